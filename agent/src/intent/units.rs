//! Intent stage: systemd units of the config (`contents` plus `dropins`, in the
//! order systemd applies them) -> the commands they run at start
//! (`ExecStartPre`, `ExecStart`, `ExecStartPost`), their type, whether the
//! config enables or masks them, and their ordering and install facts
//! (`[Unit] After=/Wants=/Requires=`, `[Install] WantedBy=/RequiredBy=`).

use crate::model::{Diagnostic, ExecRef, UnitName};

use super::document;
use super::ini::{self, Flavour};

/// A unit as the config defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDef {
    /// Name.
    pub name: UnitName,
    /// `enabled` in the config (None: it says nothing).
    pub enabled: Option<bool>,
    /// `mask: true`.
    pub masked: bool,
    /// `[Service] Type=` (systemd's default is `simple`).
    pub service_type: Option<String>,
    /// Commands run when it starts, in order.
    pub execs: Vec<Exec>,
    /// `[Unit]` dependencies and ordering, and `[Install]`: unit names by key.
    pub deps: Deps,
}

/// A unit's `[Unit]` ordering and dependencies and its `[Install]` section, as
/// systemd reads them (space-separated lists; an empty assignment resets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// `After=`.
    pub after: Vec<String>,
    /// `Wants=`.
    pub wants: Vec<String>,
    /// `Requires=` (and `BindsTo=`, which implies it).
    pub requires: Vec<String>,
    /// `[Install] WantedBy=`.
    pub wanted_by: Vec<String>,
    /// `[Install] RequiredBy=`.
    pub required_by: Vec<String>,
    /// Whether an `[Install]` section exists at all.
    pub has_install: bool,
}

impl Deps {
    fn apply(&mut self, section: &str, key: &str, value: &str) {
        if section == "Install" {
            self.has_install = true;
        }
        let list = match (section, key) {
            ("Unit", "After") => &mut self.after,
            ("Unit", "Wants") => &mut self.wants,
            ("Unit", "Requires" | "BindsTo") => &mut self.requires,
            ("Install", "WantedBy") => &mut self.wanted_by,
            ("Install", "RequiredBy") => &mut self.required_by,
            _ => return,
        };
        if value.is_empty() {
            list.clear();
        }
        list.extend(value.split_whitespace().map(str::to_owned));
    }

    /// Whether the unit is ordered after `unit`.
    pub fn is_after(&self, unit: &str) -> bool {
        self.after.iter().any(|u| u == unit)
    }

    /// Whether the unit pulls `unit` in (`Wants=` or `Requires=`).
    pub fn pulls(&self, unit: &str) -> bool {
        self.wants.iter().chain(&self.requires).any(|u| u == unit)
    }
}

impl UnitDef {
    /// A oneshot is expected to have run; anything else to be active.
    pub fn is_oneshot(&self) -> bool {
        self.service_type.as_deref() == Some("oneshot")
    }
}

/// One `Exec*=` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// `unit NAME line N` or `unit NAME drop-in FILE line N`.
    pub origin: String,
    /// argv, prefixes removed.
    pub words: Vec<String>,
    /// Uses `$VAR` or `%` specifiers: words are not literal.
    pub dynamic: bool,
    /// Which command of the unit it is, as systemd reports each one's exit
    /// status (`ExecStart` index 0...), and whether a `-` prefix ignores its
    /// failure.
    pub at: ExecRef,
}

const EXEC_KEYS: [&str; 3] = ["ExecStartPre", "ExecStart", "ExecStartPost"];

/// Read a unit entry of the config.
pub fn read(unit: &document::Unit, origin: &str) -> Result<UnitDef, Diagnostic> {
    let name = UnitName::new(&unit.name).map_err(|e| Diagnostic::error(origin, e.to_string()))?;
    let mut def = UnitDef {
        name,
        enabled: unit.enabled(),
        masked: unit.mask.unwrap_or(false),
        service_type: None,
        execs: Vec::new(),
        deps: Deps::default(),
    };
    let mut lists: [Vec<Exec>; 3] = Default::default();
    let mut sources = vec![(
        format!("unit {}", unit.name),
        unit.contents.clone().unwrap_or_default(),
    )];
    let mut dropins: Vec<_> = unit.dropins.iter().flatten().collect();
    dropins.sort_by(|a, b| a.name.cmp(&b.name));
    for d in dropins {
        sources.push((
            format!("unit {} drop-in {}", unit.name, d.name),
            d.contents.clone().unwrap_or_default(),
        ));
    }
    for (where_, text) in &sources {
        apply(&mut def, &mut lists, where_, text);
    }
    for (key, list) in EXEC_KEYS.iter().zip(lists.iter_mut()) {
        for (index, exec) in list.iter_mut().enumerate() {
            exec.at.property = key;
            exec.at.index = index;
        }
    }
    def.execs = lists.into_iter().flatten().collect();
    Ok(def)
}

fn apply(def: &mut UnitDef, lists: &mut [Vec<Exec>; 3], where_: &str, text: &str) {
    for e in ini::entries(text, Flavour::Unit) {
        def.deps.apply(&e.section, &e.key, &e.value);
        if e.section != "Service" {
            continue;
        }
        if e.key == "Type" {
            def.service_type = Some(e.value.clone());
            continue;
        }
        let Some(slot) = EXEC_KEYS.iter().position(|k| *k == e.key) else {
            continue;
        };
        if e.value.is_empty() {
            lists[slot].clear();
            continue;
        }
        lists[slot].push(exec(&e.value, format!("{where_} line {}", e.line)));
    }
}

/// Split a command line as systemd does, after its `-@:+!` prefixes.
fn exec(value: &str, origin: String) -> Exec {
    let prefixes: String = value.chars().take_while(|c| "-@:+!".contains(*c)).collect();
    let rest = &value[prefixes.len()..];
    let split = shell_words::split(rest);
    let dynamic = rest.contains('$') || has_specifier(rest) || split.is_err();
    let mut words = split.unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect());
    if prefixes.contains('@') && words.len() > 1 {
        words.remove(1);
    }
    Exec {
        at: ExecRef {
            property: EXEC_KEYS[1],
            index: 0,
            ignore_failure: prefixes.contains('-'),
            origin: origin.clone(),
        },
        origin,
        words,
        dynamic,
    }
}

/// `%n`, `%i`... (but not `%%`).
fn has_specifier(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' && chars.next().is_some_and(|n| n != '%') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(contents: &str, dropins: &[(&str, &str)]) -> document::Unit {
        document::Unit {
            name: "r.service".into(),
            enabled: Some(true),
            contents: Some(contents.into()),
            dropins: Some(
                dropins
                    .iter()
                    .map(|(n, c)| document::Dropin {
                        name: (*n).into(),
                        contents: Some((*c).into()),
                    })
                    .collect(),
            ),
            ..document::Unit::default()
        }
    }

    #[test]
    fn execs_in_order_with_prefixes() {
        let u = unit(
            "[Unit]\nDescription=x\n[Service]\nType=oneshot\nExecStart=-/usr/bin/nmcli dev modify ens5 +ipv4.routes \"10.0.0.0/8 1.1.1.1\"\nExecStartPre=+@/bin/sh sh -c 'true'\nExecStartPost=ip route add $NET dev eth0\n",
            &[],
        );
        let d = read(&u, "systemd.units[0]").expect("valid");
        assert!(d.is_oneshot());
        let got: Vec<_> = d
            .execs
            .iter()
            .map(|e| (e.origin.as_str(), e.words.join(" "), e.dynamic))
            .collect();
        assert_eq!(
            got,
            vec![
                ("unit r.service line 6", "/bin/sh -c true".into(), false),
                (
                    "unit r.service line 5",
                    "/usr/bin/nmcli dev modify ens5 +ipv4.routes 10.0.0.0/8 1.1.1.1".into(),
                    false
                ),
                ("unit r.service line 7", "ip route add $NET dev eth0".into(), true),
            ]
        );
    }

    #[test]
    fn dropins_override_in_name_order() {
        let u = unit(
            "[Service]\nExecStart=/bin/a\n",
            &[
                ("20-b.conf", "[Service]\nExecStart=/bin/c\n"),
                (
                    "10-a.conf",
                    "[Service]\nExecStart=\nExecStart=/bin/b\nType=oneshot\n",
                ),
            ],
        );
        let d = read(&u, "x").expect("valid");
        let got: Vec<_> = d
            .execs
            .iter()
            .map(|e| (e.origin.as_str(), e.words.join(" ")))
            .collect();
        assert_eq!(
            got,
            vec![
                ("unit r.service drop-in 10-a.conf line 3", "/bin/b".into()),
                ("unit r.service drop-in 20-b.conf line 2", "/bin/c".into())
            ]
        );
        assert!(d.is_oneshot());
    }

    #[test]
    fn ordering_and_install() {
        let u = unit(
            "[Unit]\nAfter=network-online.target NetworkManager.service\nWants=a.service\n[Service]\nType=oneshot\n[Install]\nWantedBy=multi-user.target\n",
            &[(
                "10-x.conf",
                "[Unit]\nWants=\nWants=network-online.target\nBindsTo=b.service\n",
            )],
        );
        let d = read(&u, "x").expect("valid").deps;
        assert!(d.is_after("network-online.target") && d.is_after("NetworkManager.service"));
        assert_eq!(d.wants, ["network-online.target"]);
        assert!(d.pulls("b.service") && !d.pulls("a.service"));
        assert_eq!(d.wanted_by, ["multi-user.target"]);
        assert!(d.has_install);
        let none = read(&unit("[Service]\nExecStart=/bin/true\n", &[]), "x")
            .expect("valid")
            .deps;
        assert_eq!(none, Deps::default());
    }

    #[test]
    fn bad_name_and_specifiers() {
        let mut u = unit("", &[]);
        u.name = "no suffix".into();
        assert!(read(&u, "systemd.units[3]").is_err());
        assert!(has_specifier("ip route add 10.0.0.0/8 dev %i"));
        assert!(!has_specifier("echo 100%%"));
    }
}
