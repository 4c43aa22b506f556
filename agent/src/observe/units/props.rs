//! Observe stage, systemd side: property maps (as `GetAll` returns them) to
//! [`UnitStatus`]. Pure: no bus here, so it is tested from hand-built maps.

use std::collections::HashMap;

use zbus::OwnedVariant;

use super::UnitsError;
use crate::model::{ActiveState, CommandStatus, ServiceStatus, UnitName, UnitStatus};

/// The answer of `org.freedesktop.DBus.Properties.GetAll`: property name to value.
pub type PropertyMap = HashMap<String, OwnedVariant>;

/// The interface every unit object has.
pub const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
/// The interface `.service` unit objects have.
pub const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";

/// Build a unit's status from its `org.freedesktop.systemd1.Unit` properties and,
/// for a loaded service, its `org.freedesktop.systemd1.Service` properties.
///
/// A missing property or one of another type is an error naming the unit and the
/// property; properties not read here are ignored.
pub fn status_from_properties(
    name: &UnitName,
    unit: &PropertyMap,
    service: Option<&PropertyMap>,
) -> Result<UnitStatus, UnitsError> {
    let u = Props::new(name, UNIT_INTERFACE, unit);
    Ok(UnitStatus {
        name: name.clone(),
        load_state: u.string("LoadState")?,
        active_state: ActiveState::parse(u.get("ActiveState")?),
        sub_state: u.string("SubState")?,
        unit_file_state: u.string("UnitFileState")?,
        condition_result: u.get("ConditionResult")?,
        condition_usec: u.get("ConditionTimestampMonotonic")?,
        inactive_exit_usec: u.get("InactiveExitTimestampMonotonic")?,
        service: service.map(|s| service_status(name, s)).transpose()?,
    })
}

/// The `org.freedesktop.systemd1.Service` properties read here.
fn service_status(name: &UnitName, map: &PropertyMap) -> Result<ServiceStatus, UnitsError> {
    let s = Props::new(name, SERVICE_INTERFACE, map);
    let mut commands = Vec::new();
    for property in EXEC_PROPERTIES {
        commands.extend(s.commands(property)?);
    }
    Ok(ServiceStatus {
        service_type: s.string("Type")?,
        result: s.string("Result")?,
        exec_main_status: s.get("ExecMainStatus")?,
        exec_main_code: s.get("ExecMainCode")?,
        exec_main_start_usec: s.get("ExecMainStartTimestampMonotonic")?,
        exec_main_exit_usec: s.get("ExecMainExitTimestampMonotonic")?,
        remain_after_exit: s.get("RemainAfterExit")?,
        commands,
    })
}

/// The command-list properties whose per-command statuses are read.
const EXEC_PROPERTIES: [&str; 3] = ["ExecStartPre", "ExecStart", "ExecStartPost"];

/// One entry of an `a(sasbttttuii)` command list: path, argv, ignore failure,
/// start (realtime, monotonic), exit (realtime, monotonic), pid, code, status.
type CommandEntry = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

/// One interface's property map of one unit, with typed getters.
struct Props<'a> {
    unit: &'a UnitName,
    interface: &'static str,
    map: &'a PropertyMap,
}

impl<'a> Props<'a> {
    fn new(unit: &'a UnitName, interface: &'static str, map: &'a PropertyMap) -> Props<'a> {
        Props { unit, interface, map }
    }

    /// A property of type `T` (`&str` for `s`, `bool` for `b`, `u64` for `t`, `i32` for `i`).
    fn get<T>(&self, property: &'static str) -> Result<T, UnitsError>
    where
        T: TryFrom<&'a OwnedVariant, Error = zbus::Error>,
    {
        let value = self
            .map
            .get(property)
            .ok_or_else(|| self.error(property, "is missing".to_owned()))?;
        T::try_from(value).map_err(|_| {
            let problem = format!("has unexpected type {}", value.value_signature());
            self.error(property, problem)
        })
    }

    /// A string property, owned.
    fn string(&self, property: &'static str) -> Result<String, UnitsError> {
        self.get::<&str>(property).map(str::to_owned)
    }

    /// How each command of a command-list property last ran (none when the
    /// property is absent, as for a service without such commands on an older
    /// systemd).
    fn commands(&self, property: &'static str) -> Result<Vec<CommandStatus>, UnitsError> {
        let Some(value) = self.map.get(property) else {
            return Ok(Vec::new());
        };
        let entries: Vec<CommandEntry> = value
            .try_clone()
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                self.error(
                    property,
                    format!("has unexpected type {}", value.value_signature()),
                )
            })?;
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(index, e)| CommandStatus {
                property,
                index,
                ran: e.4 > 0,
                code: e.8,
                status: e.9,
            })
            .collect())
    }

    fn error(&self, property: &'static str, problem: String) -> UnitsError {
        UnitsError::Property {
            unit: self.unit.to_string(),
            interface: self.interface,
            property,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::Str;

    fn name(n: &str) -> UnitName {
        UnitName::new(n).expect("valid unit name")
    }

    fn s(v: &str) -> OwnedVariant {
        OwnedVariant::from(Str::from(v.to_owned()))
    }

    /// The Unit properties of a oneshot that ran and exited, as systemd 252 sends them.
    fn unit_map(active: &str, sub: &str) -> PropertyMap {
        PropertyMap::from([
            ("Id".to_owned(), s("a.service")),
            ("LoadState".to_owned(), s("loaded")),
            ("ActiveState".to_owned(), s(active)),
            ("SubState".to_owned(), s(sub)),
            ("UnitFileState".to_owned(), s("enabled")),
            ("ConditionResult".to_owned(), OwnedVariant::from(true)),
            (
                "ConditionTimestampMonotonic".to_owned(),
                OwnedVariant::from(5_000_000u64),
            ),
            (
                "InactiveExitTimestampMonotonic".to_owned(),
                OwnedVariant::from(5_000_100u64),
            ),
        ])
    }

    fn service_map() -> PropertyMap {
        PropertyMap::from([
            ("Type".to_owned(), s("oneshot")),
            ("Result".to_owned(), s("exit-code")),
            ("ExecMainStatus".to_owned(), OwnedVariant::from(8i32)),
            ("ExecMainCode".to_owned(), OwnedVariant::from(1i32)),
            (
                "ExecMainStartTimestampMonotonic".to_owned(),
                OwnedVariant::from(5_000_200u64),
            ),
            (
                "ExecMainExitTimestampMonotonic".to_owned(),
                OwnedVariant::from(5_900_000u64),
            ),
            ("RemainAfterExit".to_owned(), OwnedVariant::from(false)),
        ])
    }

    #[test]
    fn a_failed_oneshot() {
        let unit = unit_map("failed", "failed");
        let st = status_from_properties(&name("a.service"), &unit, Some(&service_map()))
            .expect("complete maps convert");
        assert_eq!(st.active_state, ActiveState::Failed);
        assert_eq!(st.sub_state, "failed");
        assert_eq!(st.unit_file_state, "enabled");
        assert!(st.condition_result);
        assert_eq!(st.condition_usec, 5_000_000);
        assert_eq!(st.inactive_exit_usec, 5_000_100);
        let svc = st.service.expect("service properties were given");
        assert_eq!(svc.service_type, "oneshot");
        assert_eq!(svc.result, "exit-code");
        assert_eq!((svc.exec_main_code, svc.exec_main_status), (1, 8));
        assert_eq!(svc.exec_main_exit_usec, 5_900_000);
        assert!(!svc.remain_after_exit);
    }

    #[test]
    fn unknown_states_and_no_service_properties() {
        let unit = unit_map("maintenance", "whatever");
        let st = status_from_properties(&name("b.target"), &unit, None).expect("converts");
        assert_eq!(st.active_state, ActiveState::Other("maintenance".to_owned()));
        assert_eq!(st.service, None);
    }

    #[test]
    fn a_missing_property_names_unit_and_property() {
        let mut unit = unit_map("active", "exited");
        unit.remove("SubState");
        let err = status_from_properties(&name("c.service"), &unit, None).expect_err("missing");
        assert_eq!(err.kind(), "property");
        let text = err.to_string();
        assert!(text.contains("c.service"), "{text}");
        assert!(text.contains("org.freedesktop.systemd1.Unit.SubState"), "{text}");
    }

    #[test]
    fn a_property_of_another_type_is_refused() {
        let mut svc = service_map();
        svc.insert("ExecMainStatus".to_owned(), s("8"));
        let unit = unit_map("failed", "failed");
        let err = status_from_properties(&name("d.service"), &unit, Some(&svc)).expect_err("wrong type");
        let text = err.to_string();
        assert!(text.contains("ExecMainStatus has unexpected type s"), "{text}");
    }
}
