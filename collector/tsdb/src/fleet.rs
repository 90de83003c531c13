//! A deterministic synthetic fleet for tests and benchmarks: the "realistic mix" of the
//! density targets. Per target: 40% constant series (info, limits, sizes), 25% busy integer
//! counters (bytes, packets), 10% rare-event integer counters (errors), 10% float counters
//! with two decimals (CPU seconds), 7% integer gauges (memory bytes), 5% two-decimal gauges
//! (load, temperature) and 3% arbitrary float gauges (ratios).

use crate::labels::Labels;

/// A small xorshift generator (deterministic across runs).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Constant,
    BusyCounter,
    RareCounter,
    CpuSeconds,
    MemBytes,
    Decimal,
    Ratio,
}

fn kind_of(j: usize) -> Kind {
    match j % 100 {
        0..40 => Kind::Constant,
        40..65 => Kind::BusyCounter,
        65..75 => Kind::RareCounter,
        75..85 => Kind::CpuSeconds,
        85..92 => Kind::MemBytes,
        92..97 => Kind::Decimal,
        _ => Kind::Ratio,
    }
}

/// The fleet and the state of every series.
pub struct Fleet {
    /// Labels of every series, target-major.
    pub labels: Vec<Labels>,
    kinds: Vec<Kind>,
    values: Vec<f64>,
    rng: Rng,
}

impl Fleet {
    /// `targets` × `per_target` series.
    pub fn new(targets: usize, per_target: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut labels = Vec::with_capacity(targets * per_target);
        let mut kinds = Vec::with_capacity(labels.capacity());
        let mut values = Vec::with_capacity(labels.capacity());
        for t in 0..targets {
            let instance = format!("host-{t:04}:9100");
            for j in 0..per_target {
                let kind = kind_of(j);
                let name = match kind {
                    Kind::Constant => "node_filesystem_size_bytes",
                    Kind::BusyCounter => "node_network_receive_bytes_total",
                    Kind::RareCounter => "node_network_receive_errs_total",
                    Kind::CpuSeconds => "node_cpu_seconds_total",
                    Kind::MemBytes => "node_memory_Active_bytes",
                    Kind::Decimal => "node_hwmon_temp_celsius",
                    Kind::Ratio => "node_pressure_ratio",
                };
                let idx = j.to_string();
                labels.push(Labels::from_pairs([
                    ("__name__", name),
                    ("instance", instance.as_str()),
                    ("job", "node"),
                    ("device", idx.as_str()),
                ]));
                kinds.push(kind);
                values.push(match kind {
                    Kind::Constant => (rng.below(1 << 30) * 4096) as f64,
                    Kind::BusyCounter => rng.below(1 << 40) as f64,
                    Kind::RareCounter => rng.below(100) as f64,
                    Kind::CpuSeconds => rng.below(10_000_000) as f64 / 100.0,
                    Kind::MemBytes => (rng.below(1 << 22) * 4096) as f64,
                    Kind::Decimal => (3000 + rng.below(4000)) as f64 / 100.0,
                    Kind::Ratio => rng.below(1000) as f64 / 7.0,
                });
            }
        }
        Self { labels, kinds, values, rng }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the fleet is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Advances every series by one scrape and returns the new values (same order as labels).
    pub fn step(&mut self) -> &[f64] {
        for (v, k) in self.values.iter_mut().zip(&self.kinds) {
            let r = &mut self.rng;
            *v = match k {
                Kind::Constant => *v,
                Kind::BusyCounter => *v + r.below(20_000) as f64,
                Kind::RareCounter => *v + if r.below(100) < 3 { 1.0 } else { 0.0 },
                Kind::CpuSeconds => ((*v * 100.0).round() + r.below(100) as f64) / 100.0,
                Kind::MemBytes => (*v + (r.below(64) as f64 - 32.0) * 4096.0).max(0.0),
                Kind::Decimal => {
                    if r.below(10) < 3 {
                        ((*v * 100.0).round() + r.below(51) as f64 - 25.0) / 100.0
                    } else {
                        *v
                    }
                }
                Kind::Ratio => r.below(100_000) as f64 / 7.0,
            };
        }
        &self.values
    }
}
