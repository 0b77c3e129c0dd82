//! Value types of the configuration file: listener addresses (`"off"` allowed) and
//! durations written as people write them (`"10 s"`, `"5 min"`, `"3 days"`; `"10s"`,
//! `"5m"` are read too).

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A listener address, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "" | "off" | "none" | "disabled" => Ok(Listen(None)),
            a => a.parse().map(|a| Listen(Some(a))).map_err(|_| {
                serde::de::Error::custom(format!("invalid listen address {a:?}: expected IP:PORT or \"off\""))
            }),
        }
    }
}

impl JsonSchema for Listen {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Listen".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "IP:PORT, or \"off\"" })
    }
}

/// Free space to keep on a file system (`storage.min_free_space`): a size (`"256MiB"`,
/// `"0"`), a share (`"5%"`) or the smaller of both (`"min(256MiB, 10%)"`). An integer is
/// read as bytes (`GATEWAY_STORAGE__MIN_FREE_SPACE=0` arrives as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FreeSpace(pub storage::embedded::MinFreeSpace);

impl Serialize for FreeSpace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for FreeSpace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FreeSpace;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size (\"256MiB\"), a share (\"5%\") or \"min(256MiB, 10%)\"")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FreeSpace, E> {
                Ok(FreeSpace(storage::embedded::MinFreeSpace::Size(v)))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FreeSpace, E> {
                u64::try_from(v)
                    .map(|v| FreeSpace(storage::embedded::MinFreeSpace::Size(v)))
                    .map_err(|_| E::custom(format!("{v}: a free space cannot be negative")))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FreeSpace, E> {
                v.parse().map(FreeSpace).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for FreeSpace {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FreeSpace".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "description": "a size (\"256MiB\"), a share of the file system (\"5%\") or \"min(256MiB, 10%)\""
        })
    }
}

/// Durations written as "10s", "500ms", "24h".
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&exact(*d))
    }

    /// A duration as people write it, exactly (it is read back): `500 ms`, `10 s`,
    /// `5 min`, `36 h`, `1 day`, `3 days` — the largest unit that divides it.
    pub fn exact(d: Duration) -> String {
        let ms = d.as_millis();
        let unit = |n: u128, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if ms == 0 {
            "0 s".to_owned()
        } else if ms.is_multiple_of(86_400_000) {
            unit(ms / 86_400_000, "day", "days")
        } else if ms.is_multiple_of(3_600_000) {
            format!("{} h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            format!("{} min", ms / 60_000)
        } else if ms.is_multiple_of(1_000) {
            format!("{} s", ms / 1_000)
        } else {
            format!("{ms} ms")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {s:?} ({e}); write e.g. \"10 s\", \"500 ms\", \"24 h\""))
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn exact_durations_read_as_written_and_back() {
            for (secs_ms, text) in [
                (200, "200 ms"),
                (10_000, "10 s"),
                (90_000, "90 s"),
                (300_000, "5 min"),
                (36 * 3_600_000, "36 h"),
                (86_400_000, "1 day"),
                (3 * 86_400_000, "3 days"),
            ] {
                let d = Duration::from_millis(secs_ms);
                assert_eq!(exact(d), text);
                assert_eq!(humantime::parse_duration(text).ok(), Some(d), "{text} reads back");
            }
        }
    }
}
