//! Where a declaration or a diagnostic is, read back from its origin text
//! (`unit NAME [drop-in FILE] [line N]`, `file PATH [line N | KEY PATH]`): for
//! JSON's `origin_detail` and for saying whose line a line number is. A line
//! number is always of the named unit's, drop-in's or file's own contents (as
//! written on the node), never of the MachineConfig's YAML or JSON.

use serde::{Serialize, Serializer};

use super::{Diagnostic, Severity, Source, SourceKind, UnitName};

/// A place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Place {
    /// A unit's contents or one of its drop-ins.
    Unit {
        /// The unit's name.
        unit: String,
        /// The drop-in, when the line is one of its lines.
        #[serde(skip_serializing_if = "Option::is_none")]
        dropin: Option<String>,
        /// The line of the unit's (or drop-in's) contents, 1-based.
        line: Option<u32>,
    },
    /// A file the MachineConfig writes (or a file given as input).
    File {
        /// Its path.
        file: String,
        /// The line of the file's contents, 1-based.
        line: Option<u32>,
        /// The entry in a YAML file (`routes.config[2]`), when that is the place.
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Anything else (a NetworkManager connection, a policy's state, a path
    /// in the document): the origin text says it all.
    Other,
}

impl Place {
    /// Read an origin.
    pub fn parse(origin: &str) -> Place {
        if let Some(rest) = origin.strip_prefix("unit ") {
            let (rest, line) = trailing_line(rest);
            let (unit, dropin) = match rest.split_once(" drop-in ") {
                Some((u, d)) => (u, Some(d.to_owned())),
                None => (rest, None),
            };
            if unit.is_empty() || unit.contains(' ') {
                return Place::Other;
            }
            return Place::Unit {
                unit: unit.to_owned(),
                dropin,
                line,
            };
        }
        if let Some(rest) = origin.strip_prefix("file ") {
            let (rest, line) = trailing_line(rest);
            let (file, key) = match (line, rest.split_once(' ')) {
                (None, Some((f, k))) => (f, Some(k.to_owned())),
                _ => (rest, None),
            };
            return Place::File {
                file: file.to_owned(),
                line,
                key,
            };
        }
        Place::Other
    }

    /// The origin as a person reads it, saying whose line a line number is.
    pub fn describe(&self, origin: &str) -> String {
        match self {
            Place::Unit {
                unit,
                dropin: None,
                line: Some(n),
            } => format!("unit {unit}, line {n} of the unit"),
            Place::Unit {
                unit,
                dropin: Some(d),
                line: Some(n),
            } => format!("unit {unit} drop-in {d}, line {n} of the drop-in"),
            Place::File {
                file, line: Some(n), ..
            } => format!("file {file}, line {n} of the file"),
            _ => origin.to_owned(),
        }
    }

    /// Null for [`Place::Other`], else the object.
    pub fn detail(origin: &str) -> Option<Place> {
        Some(Place::parse(origin)).filter(|p| *p != Place::Other)
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            kind: SourceKind,
            origin: &'a str,
            origin_detail: Option<Place>,
            unit: &'a Option<UnitName>,
        }
        Json {
            kind: self.kind,
            origin: &self.origin,
            origin_detail: Place::detail(&self.origin),
            unit: &self.unit,
        }
        .serialize(s)
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            severity: Severity,
            origin: &'a str,
            origin_detail: Option<Place>,
            message: &'a str,
        }
        Json {
            severity: self.severity,
            origin: &self.origin,
            origin_detail: Place::detail(&self.origin),
            message: &self.message,
        }
        .serialize(s)
    }
}

/// `TEXT line N` -> (`TEXT`, N).
fn trailing_line(text: &str) -> (&str, Option<u32>) {
    match text.rsplit_once(" line ") {
        Some((head, n)) => match n.parse() {
            Ok(n) => (head, Some(n)),
            Err(_) => (text, None),
        },
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_files_and_the_rest() {
        assert_eq!(
            Place::parse("unit a.service line 4"),
            Place::Unit {
                unit: "a.service".into(),
                dropin: None,
                line: Some(4)
            }
        );
        assert_eq!(
            Place::parse("unit a.service drop-in 10-x.conf line 2"),
            Place::Unit {
                unit: "a.service".into(),
                dropin: Some("10-x.conf".into()),
                line: Some(2)
            }
        );
        assert_eq!(
            Place::parse("unit a.service"),
            Place::Unit {
                unit: "a.service".into(),
                dropin: None,
                line: None
            }
        );
        assert_eq!(
            Place::parse("file /etc/nmstate/r.yml route-rules.config[3]"),
            Place::File {
                file: "/etc/nmstate/r.yml".into(),
                line: None,
                key: Some("route-rules.config[3]".into())
            }
        );
        assert_eq!(
            Place::parse("file /usr/local/bin/x.sh line 10"),
            Place::File {
                file: "/usr/local/bin/x.sh".into(),
                line: Some(10),
                key: None
            }
        );
        assert_eq!(Place::parse("connection \"ens5\" (uuid, file)"), Place::Other);
        assert_eq!(Place::detail("storage.files[1]"), None);
    }

    #[test]
    fn whose_line() {
        let say = |o: &str| Place::parse(o).describe(o);
        assert_eq!(say("unit a.service line 4"), "unit a.service, line 4 of the unit");
        assert_eq!(
            say("unit a.service drop-in 10-x.conf line 2"),
            "unit a.service drop-in 10-x.conf, line 2 of the drop-in"
        );
        assert_eq!(say("file /x.sh line 3"), "file /x.sh, line 3 of the file");
        assert_eq!(say("unit a.service"), "unit a.service");
    }

    #[test]
    fn json() {
        let v = serde_json::to_value(Place::parse("unit a.service line 4")).expect("json");
        assert_eq!(v, serde_json::json!({"unit": "a.service", "line": 4}));
        let v = serde_json::to_value(Place::parse("file /x")).expect("json");
        assert_eq!(v, serde_json::json!({"file": "/x", "line": null}));
    }
}
