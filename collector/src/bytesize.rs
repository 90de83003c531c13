//! Byte sizes written as Prometheus writes `body_size_limit`: `0`, `512`, `10KB`, `100MB`, `1GiB`
//! (binary multiples, as Prometheus's `units.Base2Bytes`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const UNITS: [(&str, u64); 6] =
    [("EB", 1 << 60), ("PB", 1 << 50), ("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];

/// A size in bytes (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let bad = || {
            format!("invalid size {s:?}: expected a number with an optional unit B, KB, MB, GB, TB (or KiB, MiB, …)")
        };
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = t[..digits].parse().map_err(|_| bad())?;
        let unit = t[digits..].trim();
        let mult = match unit {
            "" | "B" => 1,
            u => {
                let u = u.replace("iB", "B");
                UNITS.iter().find(|(name, _)| *name == u).map(|(_, m)| *m).ok_or_else(bad)?
            }
        };
        n.checked_mul(mult).map(Self).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        for (u, m) in UNITS {
            if self.0.is_multiple_of(m) {
                return write!(f, "{}{u}", self.0 / m);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_base2_units() {
        for (s, n) in [("0", 0), ("512", 512), ("10KB", 10240), ("100MB", 100 << 20), ("1GiB", 1 << 30), ("3 B", 3)] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
        assert!("10XB".parse::<ByteSize>().is_err());
        assert!("MB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(100 << 20).to_string(), "100MB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
    }
}
