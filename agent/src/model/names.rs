//! Validated names: a Linux interface name and a systemd unit name. After
//! parsing, neither is a bare `String`.

use std::fmt;

use serde::Serialize;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: it {why}")]
pub struct InvalidName {
    /// "interface name" or "unit name".
    pub what: &'static str,
    /// The refused text (a name, never file contents).
    pub name: String,
    /// Why it was refused.
    pub why: &'static str,
}

/// A Linux network interface name, as the kernel accepts it (1 to 15 bytes, no
/// `/`, no whitespace, not `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfName(String);

impl IfName {
    /// Validate a kernel interface name.
    pub fn new(name: &str) -> Result<IfName, InvalidName> {
        let bad = |why| InvalidName {
            what: "interface name",
            name: name.chars().take(64).collect(),
            why,
        };
        if name.is_empty() || name.len() > 15 {
            return Err(bad("is not 1 to 15 bytes long"));
        }
        if name == "." || name == ".." {
            return Err(bad("is a reserved name"));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(bad("contains '/', ':', whitespace or a control character"));
        }
        Ok(IfName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A systemd unit name with its type suffix (`nmcli-dev-modify.service`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UnitName(String);

const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
    ".device",
];

impl UnitName {
    /// Validate a unit name as systemd does (allowed characters, a known suffix,
    /// at most 255 bytes).
    pub fn new(name: &str) -> Result<UnitName, InvalidName> {
        let bad = |why| InvalidName {
            what: "unit name",
            name: name.chars().take(64).collect(),
            why,
        };
        if name.is_empty() || name.len() > 255 {
            return Err(bad("is not 1 to 255 bytes long"));
        }
        let Some(suffix) = UNIT_SUFFIXES.iter().find(|s| name.ends_with(*s)) else {
            return Err(bad("has no unit type suffix such as .service"));
        };
        let stem = &name[..name.len() - suffix.len()];
        if stem.is_empty() {
            return Err(bad("has an empty name before the suffix"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
        if !stem.chars().all(ok) {
            return Err(bad("contains a character systemd does not allow"));
        }
        Ok(UnitName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `.service` units (they have `Result`, `ExecMainStatus`...).
    pub fn is_service(&self) -> bool {
        self.0.ends_with(".service")
    }

    /// The D-Bus object path systemd gives this unit
    /// (`/org/freedesktop/systemd1/unit/nmcli_2ddev_2dmodify_2eservice`).
    pub fn object_path(&self) -> String {
        let mut path = String::from("/org/freedesktop/systemd1/unit/");
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("_{b:02x}"));
            }
        }
        path
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!(IfName::new("ens5").is_ok());
        assert!(IfName::new("br-ex").is_ok());
        assert!(IfName::new("").is_err());
        assert!(IfName::new("a-very-long-name0").is_err());
        assert!(IfName::new("eth/0").is_err());
        assert!(IfName::new("eth 0").is_err());
        assert!(IfName::new("..").is_err());
    }

    #[test]
    fn unit_name_rules_and_object_path() {
        let u = UnitName::new("nmcli-dev-modify.service").expect("valid");
        assert_eq!(
            u.object_path(),
            "/org/freedesktop/systemd1/unit/nmcli_2ddev_2dmodify_2eservice"
        );
        assert!(u.is_service());
        assert!(UnitName::new("foo").is_err());
        assert!(UnitName::new(".service").is_err());
        assert!(UnitName::new("a b.service").is_err());
        assert!(UnitName::new("getty@tty1.service").is_ok());
    }
}
