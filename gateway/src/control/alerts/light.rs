//! The traffic light per register that OFD cabinets show: **red** when a critical alert
//! fires, **yellow** when a warning fires, **green** otherwise (info alerts do not change
//! the colour), **grey** for a suspended register (its documents are refused, so its
//! alerts say nothing).

use serde::{Deserialize, Serialize};
use storage::model::{AlertState, AlertStatus, RegisterStatus, Severity};

/// A register's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    /// Nothing that needs attention.
    Green,
    /// A warning fires.
    Yellow,
    /// A critical alert fires.
    Red,
    /// Suspended.
    Grey,
}

impl Light {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
            Self::Grey => "grey",
        }
    }
}

/// The colour of a register given the severities of its firing alerts.
pub fn light(status: RegisterStatus, firing: impl IntoIterator<Item = Severity>) -> Light {
    if status == RegisterStatus::Suspended {
        return Light::Grey;
    }
    match firing.into_iter().max() {
        Some(Severity::Critical) => Light::Red,
        Some(Severity::Warning) => Light::Yellow,
        Some(Severity::Info) | None => Light::Green,
    }
}

/// The colour from a register's alert states (resolved ones are ignored).
pub fn light_of_states<'a>(status: RegisterStatus, states: impl IntoIterator<Item = &'a AlertState>) -> Light {
    light(status, states.into_iter().filter(|s| s.status == AlertStatus::Firing).map(|s| s.severity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        use Severity::*;
        let a = RegisterStatus::Active;
        assert_eq!(light(a, []), Light::Green);
        assert_eq!(light(a, [Info]), Light::Green);
        assert_eq!(light(a, [Info, Warning]), Light::Yellow);
        assert_eq!(light(a, [Warning, Critical, Info]), Light::Red);
        assert_eq!(light(RegisterStatus::Suspended, [Critical]), Light::Grey);
    }
}
