//! A grammar of PromQL queries: mostly dashboard-like (rates, aggregations by labels, ratios,
//! histogram quantiles), with random nesting, durations, matchers, offsets, `@`, subqueries,
//! and a share of deliberately wrong ones (functions with the wrong number or type of
//! arguments, bad regexes, unbalanced brackets, stray tokens, truncations).

use std::fmt::Write as _;

/// A small deterministic PRNG (SplitMix64): reproducible from the seed the run prints.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn pct(&mut self, p: u32) -> bool {
        self.below(100) < p as usize
    }

    /// One element of `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// Metric names in the fuzz data set (see `main.rs`), plus one that never exists.
pub const METRICS: &[&str] =
    &["http_requests_total", "mem_bytes", "lat_seconds_bucket", "flappy", "weird_values", "up", "node_info", "nope"];

const LABELS: &[&str] = &["job", "instance", "code", "le", "mode", "nope", "job", "instance", "__name__"];
const VALUES: &[&str] = &["api", "db", "a", "b", "200", "500", "0.1", "+Inf", "", "idle", "x.y"];
const REGEXES: &[&str] =
    &[".*", ".+", "a|b", "d.*", "api|db", "[ab]", "(.*)", "5..", "x\\\\.y", "(", "[z-a]", "a{2,1}"];
const DURATIONS: &[&str] =
    &["1ms", "1s", "15s", "30s", "1m", "90s", "2m", "5m", "10m", "1h", "1h30m", "6h", "1d", "1w", "2y", "0s"];
const BAD_DURATIONS: &[&str] =
    &["5", "1.5m", "m", "-5m", "5mm", "99999999999999999999y", "", "99999999999999999999", "1e30", "1e400", "0x10"];
const NUMBERS: &[&str] = &[
    "0", "1", "2", "0.5", "0.99", "-1", "3", "10", "100", "1e3", "1e-9", "NaN", "Inf", "-Inf", "0x10", "1_000", "1e308",
];

/// Argument kinds of a function signature.
#[derive(Clone, Copy)]
enum Arg {
    /// Instant vector.
    V,
    /// Range vector.
    M,
    /// Scalar.
    S,
    /// String.
    Str,
    /// Label name string.
    Label,
}

use Arg::{Label, M, S, Str, V};

/// `(name, required args, optional args, repeat last arg)`.
const FUNCTIONS: &[(&str, &[Arg], &[Arg], bool)] = &[
    ("abs", &[V], &[], false),
    ("absent", &[V], &[], false),
    ("absent_over_time", &[M], &[], false),
    ("acos", &[V], &[], false),
    ("asinh", &[V], &[], false),
    ("atan", &[V], &[], false),
    ("avg_over_time", &[M], &[], false),
    ("ceil", &[V], &[], false),
    ("changes", &[M], &[], false),
    ("clamp", &[V, S, S], &[], false),
    ("clamp_max", &[V, S], &[], false),
    ("clamp_min", &[V, S], &[], false),
    ("cos", &[V], &[], false),
    ("count_over_time", &[M], &[], false),
    ("days_in_month", &[], &[V], false),
    ("day_of_month", &[], &[V], false),
    ("day_of_week", &[], &[V], false),
    ("day_of_year", &[], &[V], false),
    ("deg", &[V], &[], false),
    ("delta", &[M], &[], false),
    ("deriv", &[M], &[], false),
    ("double_exponential_smoothing", &[M, S, S], &[], false),
    ("exp", &[V], &[], false),
    ("first_over_time", &[M], &[], false),
    ("floor", &[V], &[], false),
    ("histogram_quantile", &[S, V], &[], false),
    ("histogram_count", &[V], &[], false),
    ("histogram_sum", &[V], &[], false),
    ("histogram_fraction", &[S, S, V], &[], false),
    ("hour", &[], &[V], false),
    ("idelta", &[M], &[], false),
    ("increase", &[M], &[], false),
    ("irate", &[M], &[], false),
    ("label_join", &[V, Label, Str], &[Label], true),
    ("label_replace", &[V, Label, Str, Label, Str], &[], false),
    ("last_over_time", &[M], &[], false),
    ("ln", &[V], &[], false),
    ("log10", &[V], &[], false),
    ("log2", &[V], &[], false),
    ("mad_over_time", &[M], &[], false),
    ("max_over_time", &[M], &[], false),
    ("min_over_time", &[M], &[], false),
    ("minute", &[], &[V], false),
    ("month", &[], &[V], false),
    ("pi", &[], &[], false),
    ("predict_linear", &[M, S], &[], false),
    ("present_over_time", &[M], &[], false),
    ("quantile_over_time", &[S, M], &[], false),
    ("rad", &[V], &[], false),
    ("rate", &[M], &[], false),
    ("resets", &[M], &[], false),
    ("round", &[V], &[S], false),
    ("scalar", &[V], &[], false),
    ("sgn", &[V], &[], false),
    ("sin", &[V], &[], false),
    ("sort", &[V], &[], false),
    ("sort_desc", &[V], &[], false),
    ("sort_by_label", &[V], &[Label], true),
    ("sort_by_label_desc", &[V], &[Label], true),
    ("sqrt", &[V], &[], false),
    ("stddev_over_time", &[M], &[], false),
    ("stdvar_over_time", &[M], &[], false),
    ("sum_over_time", &[M], &[], false),
    ("tanh", &[V], &[], false),
    ("time", &[], &[], false),
    ("timestamp", &[V], &[], false),
    ("vector", &[S], &[], false),
    ("year", &[], &[V], false),
    // Not in every parser generation: the engine must answer with an error, never panic.
    ("holt_winters", &[M, S, S], &[], false),
    ("integral", &[M], &[S], false),
    ("max_of", &[V, V], &[V], true),
    ("ts_of_max_over_time", &[M], &[], false),
    ("info", &[V], &[V], false),
    ("no_such_function", &[V], &[], false),
];

const AGGS: &[&str] = &["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"];
const PARAM_AGGS: &[&str] = &["topk", "bottomk", "limitk", "limit_ratio", "quantile", "count_values"];
const ARITH: &[&str] = &["+", "-", "*", "/", "%", "^", "atan2"];
const CMP: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
const SET: &[&str] = &["and", "or", "unless"];

/// Generates queries from the grammar.
pub struct Gen<'r> {
    rng: &'r mut Rng,
    max_depth: usize,
}

impl<'r> Gen<'r> {
    /// A generator nesting at most `max_depth` levels.
    pub fn new(rng: &'r mut Rng, max_depth: usize) -> Self {
        Self { rng, max_depth }
    }

    /// One query: usually well-typed, sometimes mutated into a malformed one.
    pub fn query(&mut self) -> String {
        let depth = self.rng.below(self.max_depth + 1);
        let q = match self.rng.below(10) {
            0..=5 => self.vector(depth),
            6 => self.dashboard(),
            7 => self.scalar(depth),
            8 => self.matrix(depth),
            _ => self.any(depth),
        };
        if self.rng.pct(15) { self.mutate(&q) } else { q }
    }

    fn any(&mut self, d: usize) -> String {
        match self.rng.below(4) {
            0 => self.vector(d),
            1 => self.scalar(d),
            2 => self.matrix(d),
            _ => self.string(),
        }
    }

    fn string(&mut self) -> String {
        let s = self.rng.pick(VALUES);
        match self.rng.below(3) {
            0 => format!("\"{s}\""),
            1 => format!("'{s}'"),
            _ => format!("`{s}`"),
        }
    }

    fn duration(&mut self) -> String {
        if self.rng.pct(3) { self.rng.pick(BAD_DURATIONS).to_owned() } else { self.rng.pick(DURATIONS).to_owned() }
    }

    fn number(&mut self) -> String {
        if self.rng.pct(30) {
            format!("{}", self.rng.below(2000) as f64 / 100.0)
        } else {
            self.rng.pick(NUMBERS).to_owned()
        }
    }

    fn matcher(&mut self) -> String {
        let l = self.rng.pick(LABELS);
        match self.rng.below(4) {
            0 => format!("{l}=\"{}\"", self.rng.pick(VALUES)),
            1 => format!("{l}!=\"{}\"", self.rng.pick(VALUES)),
            2 => format!("{l}=~\"{}\"", self.rng.pick(REGEXES)),
            _ => format!("{l}!~\"{}\"", self.rng.pick(REGEXES)),
        }
    }

    fn selector(&mut self) -> String {
        let name = self.rng.pick(METRICS);
        let n = [0, 0, 1, 1, 1, 2, 3][self.rng.below(7)];
        let ms: Vec<String> = (0..n).map(|_| self.matcher()).collect();
        let mut s = if self.rng.pct(4) {
            // No metric name: series of several metrics, which collide once names are dropped.
            ["{job=~\".+\"}", "{__name__=~\".+\"}", "{instance=\"a\"}", "{__name__=~\"mem.*|up\"}"][self.rng.below(4)]
                .to_owned()
        } else if ms.is_empty() {
            name.to_owned()
        } else if self.rng.pct(10) {
            format!("{{__name__=\"{name}\",{}}}", ms.join(","))
        } else {
            format!("{name}{{{}}}", ms.join(","))
        };
        self.modifiers(&mut s);
        s
    }

    fn modifiers(&mut self, s: &mut String) {
        if self.rng.pct(12) {
            let sign = if self.rng.pct(20) { "-" } else { "" };
            let d = self.duration();
            let _ = write!(s, " offset {sign}{d}");
        }
        if self.rng.pct(8) {
            let at = match self.rng.below(4) {
                0 => "start()".to_owned(),
                1 => "end()".to_owned(),
                2 => format!("{}", 1_700_000_000 + self.rng.below(7200)),
                _ => self.number(),
            };
            let _ = write!(s, " @ {at}");
        }
    }

    fn grouping(&mut self) -> String {
        if self.rng.pct(40) {
            return String::new();
        }
        let n = self.rng.below(3);
        let ls: Vec<&str> = (0..n).map(|_| self.rng.pick(LABELS)).collect();
        let kw = if self.rng.pct(75) { "by" } else { "without" };
        format!(" {kw} ({})", ls.join(", "))
    }

    fn matching(&mut self) -> String {
        let mut s = String::new();
        if self.rng.pct(30) {
            let kw = if self.rng.pct(70) { "on" } else { "ignoring" };
            let n = self.rng.below(3);
            let ls: Vec<&str> = (0..n).map(|_| self.rng.pick(LABELS)).collect();
            s = format!(" {kw}({})", ls.join(", "));
            if self.rng.pct(30) {
                let g = if self.rng.pct(50) { "group_left" } else { "group_right" };
                let extra = if self.rng.pct(50) { format!("({})", self.rng.pick(LABELS)) } else { String::new() };
                let _ = write!(s, " {g}{extra}");
            }
        }
        s
    }

    /// An instant-vector expression.
    #[allow(clippy::many_single_char_names)]
    pub fn vector(&mut self, d: usize) -> String {
        if d == 0 {
            return self.selector();
        }
        match self.rng.below(12) {
            0 | 1 => self.selector(),
            2 | 3 => self.call_returning_vector(d),
            4 => {
                let agg = self.rng.pick(AGGS);
                let g = self.grouping();
                let inner = self.vector(d - 1);
                if self.rng.pct(50) { format!("{agg}{g} ({inner})") } else { format!("{agg}({inner}){g}") }
            }
            5 => {
                let agg = self.rng.pick(PARAM_AGGS);
                let p = if agg == "count_values" { self.string() } else { self.scalar(d - 1) };
                let g = self.grouping();
                format!("{agg}{g} ({p}, {})", self.vector(d - 1))
            }
            6 | 7 => {
                let op = self.rng.pick(ARITH);
                let m = self.matching();
                let (a, b) = self.operands(d);
                format!("{a} {op}{m} {b}")
            }
            8 => {
                let op = self.rng.pick(CMP);
                let b = if self.rng.pct(40) { " bool" } else { "" };
                let m = self.matching();
                let (a, c) = self.operands(d);
                format!("{a} {op}{b}{m} {c}")
            }
            9 => {
                let op = self.rng.pick(SET);
                let m = self.matching();
                format!("{} {op}{m} {}", self.vector(d - 1), self.vector(d - 1))
            }
            10 => format!("({})", self.vector(d - 1)),
            _ => format!("-{}", self.vector(d - 1)),
        }
    }

    fn operands(&mut self, d: usize) -> (String, String) {
        match self.rng.below(3) {
            0 => (self.vector(d - 1), self.scalar(d - 1)),
            1 => (self.scalar(d - 1), self.vector(d - 1)),
            _ => (self.vector(d - 1), self.vector(d - 1)),
        }
    }

    /// A range-vector expression: a selector with a range, or a subquery.
    pub fn matrix(&mut self, d: usize) -> String {
        let r = self.duration();
        if d > 0 && self.rng.pct(25) {
            let step = if self.rng.pct(30) { String::new() } else { self.duration() };
            let mut s = format!("({})[{r}:{step}]", self.vector(d - 1));
            self.modifiers(&mut s);
            return s;
        }
        let name = self.rng.pick(METRICS);
        let m = if self.rng.pct(50) { format!("{{{}}}", self.matcher()) } else { String::new() };
        let mut s = format!("{name}{m}[{r}]");
        self.modifiers(&mut s);
        s
    }

    /// A scalar expression.
    pub fn scalar(&mut self, d: usize) -> String {
        if d == 0 || self.rng.pct(50) {
            return self.number();
        }
        match self.rng.below(5) {
            0 => format!("scalar({})", self.vector(d - 1)),
            1 => ["time()", "pi()", "start()", "end()", "step()"][self.rng.below(5)].to_owned(),
            2 => format!("{} {} {}", self.scalar(d - 1), self.rng.pick(ARITH), self.scalar(d - 1)),
            3 => format!("({})", self.scalar(d - 1)),
            _ => format!("-{}", self.scalar(d - 1)),
        }
    }

    fn arg(&mut self, a: Arg, d: usize) -> String {
        match a {
            V => self.vector(d),
            M => self.matrix(d),
            S => self.scalar(d),
            Str => self.string(),
            Label => format!("\"{}\"", self.rng.pick(LABELS)),
        }
    }

    fn call_returning_vector(&mut self, d: usize) -> String {
        let (name, req, opt, repeat) = FUNCTIONS[self.rng.below(FUNCTIONS.len())];
        let mut args: Vec<String> = req.iter().map(|a| self.arg(*a, d - 1)).collect();
        for a in opt {
            if self.rng.pct(50) {
                args.push(self.arg(*a, d - 1));
            }
        }
        if repeat && let Some(last) = opt.last().or(req.last()) {
            for _ in 0..self.rng.below(3) {
                args.push(self.arg(*last, d - 1));
            }
        }
        // Wrong arity or argument type now and then.
        if self.rng.pct(6) {
            if args.is_empty() || self.rng.pct(50) {
                args.push(self.any(d - 1));
            } else {
                args.pop();
            }
        } else if self.rng.pct(4) && !args.is_empty() {
            let i = self.rng.below(args.len());
            args[i] = self.any(d - 1);
        }
        format!("{name}({})", args.join(", "))
    }

    /// Realistic dashboard panels (node_exporter style) with a random window.
    fn dashboard(&mut self) -> String {
        let w = self.duration();
        let g = self.grouping();
        let p = ["0.5", "0.9", "0.99"][self.rng.below(3)];
        match self.rng.below(8) {
            0 => format!("sum{g} (rate(http_requests_total{{job=~\"api|db\"}}[{w}]))"),
            1 => format!(
                "sum by (job) (rate(http_requests_total{{code=~\"5..\"}}[{w}])) / sum by (job) (rate(http_requests_total[{w}]))"
            ),
            2 => format!("histogram_quantile({p}, sum by (le{}) (rate(lat_seconds_bucket[{w}])))", ", job"),
            3 => format!("topk(3, max_over_time(mem_bytes[{w}]))"),
            4 => format!("100 * (1 - avg by (instance) (rate(http_requests_total{{code=\"200\"}}[{w}])))"),
            5 => format!("rate(http_requests_total[{w}]) * on (instance, job) group_left (version) node_info"),
            6 => format!("max_over_time(rate(http_requests_total[{w}])[30m:{}])", self.duration()),
            _ => format!("predict_linear(mem_bytes[{w}], 3600) < 0 or absent(mem_bytes{{job=\"x\"}})"),
        }
    }

    /// A malformed variant: truncated, a bracket dropped or doubled, a token inserted.
    fn mutate(&mut self, q: &str) -> String {
        let chars: Vec<char> = q.chars().collect();
        if chars.is_empty() {
            return ")".into();
        }
        let i = self.rng.below(chars.len());
        let tokens =
            ["(", ")", "[", "]", "{", "}", ",", "\"", "=~", "by", "offset", "@", "5m", "1", ":", "!", "#", "'"];
        let mut out: Vec<char> = chars.clone();
        match self.rng.below(4) {
            0 => out.truncate(i),
            1 => {
                out.remove(i);
            }
            2 => {
                let t = self.rng.pick(&tokens);
                for (k, c) in t.chars().enumerate() {
                    out.insert(i + k, c);
                }
            }
            _ => out.insert(i, chars[self.rng.below(chars.len())]),
        }
        out.into_iter().collect()
    }
}
