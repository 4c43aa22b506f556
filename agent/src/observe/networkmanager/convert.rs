//! Observe stage, NetworkManager side: D-Bus replies (`GetSettings`,
//! `GetAppliedConnection`, `GetAll`) to the model's NetworkManager types. Pure:
//! no bus here, so it is tested from replies recorded on a real NetworkManager.
//!
//! NetworkManager leaves defaults out of these replies: a connection without
//! `autoconnect` autoconnects, an `ipv4` without `route-table` uses the main
//! table, one without `route-metric` uses the device's default (-1).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use zbus::{ObjectPath, OwnedVariant};

use super::proxy::{PropertyMap, SettingsMap};
use super::NmError;
use crate::model::{
    DeviceState, Family, IfName, NmConnection, NmDevice, NmIpSettings, NmProfile, NmRoute, NmRouteType,
    NmRule, ProfileFlags, RuleAction, RuleSelector, StateReason,
};

/// A device's properties, and the IP configuration objects whose changes tell
/// that its routes (or its applied connection) may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProps {
    /// The device (no applied connection yet: that is a second call).
    pub device: NmDevice,
    /// Its `Ip4Config` and `Ip6Config` object paths (none for `/`).
    pub ip_configs: Vec<String>,
}

/// A device from its `org.freedesktop.NetworkManager.Device` properties.
pub fn device_from_properties(object: &str, props: &PropertyMap) -> Result<DeviceProps, NmError> {
    let p = Fields::new(object, "", props);
    let interface = p.required::<&str>("Interface")?;
    let interface = IfName::new(interface).map_err(|e| p.error("Interface", e.to_string()))?;
    let (_, reason) = p.state_reason()?;
    let mut ip_configs = Vec::new();
    for name in ["Ip4Config", "Ip6Config"] {
        if let Some(path) = p.object_path(name)? {
            ip_configs.push(path);
        }
    }
    let device = NmDevice {
        interface,
        state: DeviceState(p.required::<u32>("State")?),
        reason: StateReason(reason),
        managed: p.required::<bool>("Managed")?,
        applied: None,
    };
    Ok(DeviceProps { device, ip_configs })
}

/// A profile from its settings and its `Settings.Connection` properties.
pub fn profile_from_reply(
    object: &str,
    settings: &SettingsMap,
    props: &PropertyMap,
) -> Result<NmProfile, NmError> {
    let p = Fields::new(object, "", props);
    let filename = p.optional::<&str>("Filename")?.filter(|f| !f.is_empty());
    Ok(NmProfile {
        settings: connection_from_settings(object, settings)?,
        filename: filename.map(str::to_owned),
        flags: ProfileFlags(p.optional::<u32>("Flags")?.unwrap_or(0)),
    })
}

/// The settings of a connection (a profile's, or the one applied to a device).
pub fn connection_from_settings(object: &str, settings: &SettingsMap) -> Result<NmConnection, NmError> {
    let empty = HashMap::new();
    let section = |name: &str| settings.get(name).unwrap_or(&empty);
    let c = Fields::new(object, "connection.", section("connection"));
    let interface_name = match c.optional::<&str>("interface-name")? {
        Some(name) => Some(IfName::new(name).map_err(|e| c.error("interface-name", e.to_string()))?),
        None => None,
    };
    Ok(NmConnection {
        id: c.required::<&str>("id")?.to_owned(),
        uuid: c.required::<&str>("uuid")?.to_owned(),
        kind: c.optional::<&str>("type")?.unwrap_or_default().to_owned(),
        interface_name,
        autoconnect: c.optional::<bool>("autoconnect")?.unwrap_or(true),
        ipv4: ip_settings(object, Family::Ipv4, settings.get("ipv4"))?,
        ipv6: ip_settings(object, Family::Ipv6, settings.get("ipv6"))?,
    })
}

/// The `ipv4` or `ipv6` setting (defaults when the connection has none).
fn ip_settings(
    object: &str,
    family: Family,
    section: Option<&HashMap<String, OwnedVariant>>,
) -> Result<NmIpSettings, NmError> {
    let Some(section) = section else {
        return Ok(NmIpSettings {
            route_metric: -1,
            ..NmIpSettings::default()
        });
    };
    let setting = format!("{family}.");
    let s = Fields::new(object, &setting, section);
    let routes = s
        .dicts("route-data")?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            route(
                &Fields::new(object, &format!("{setting}route-data[{i}]."), r),
                family,
            )
        })
        .collect::<Result<_, _>>()?;
    let rules = s
        .dicts("routing-rules")?
        .iter()
        .enumerate()
        .map(|(i, r)| rule(&Fields::new(object, &format!("{setting}routing-rules[{i}]."), r)))
        .collect::<Result<_, _>>()?;
    Ok(NmIpSettings {
        method: s.optional::<&str>("method")?.map(str::to_owned),
        routes,
        route_table: s.optional::<u32>("route-table")?.unwrap_or(0),
        route_metric: s.optional::<i64>("route-metric")?.unwrap_or(-1),
        rules,
    })
}

/// One entry of `route-data`.
fn route(r: &Fields<'_>, family: Family) -> Result<NmRoute, NmError> {
    let destination = r.network("dest", "prefix")?;
    if Family::of_net(&destination) != family {
        return Err(r.error("dest", format!("{destination} is not an {family} network")));
    }
    let next_hop = r.address("next-hop")?.filter(|a| !a.is_unspecified());
    if let Some(hop) = next_hop.filter(|h| Family::of(h) != family) {
        return Err(r.error("next-hop", format!("{hop} is not an {family} address")));
    }
    let kind = match r.optional::<&str>("type")? {
        None | Some("unicast") => NmRouteType::Unicast,
        Some(other) => NmRouteType::Other(other.to_owned()),
    };
    Ok(NmRoute {
        destination,
        next_hop,
        metric: r.optional::<u32>("metric")?,
        table: r.optional::<u32>("table")?,
        kind,
        onlink: r.optional::<bool>("onlink")?.unwrap_or(false),
    })
}

/// One entry of `routing-rules`. NetworkManager leaves out what is unset:
/// `from`/`to` for all, `action` for a table lookup, `fwmark`/`fwmask` 0 (nmcli
/// stores `fwmark M` with mask all ones), `suppress-prefixlength` -1, a port
/// range's end when it is its start.
fn rule(r: &Fields<'_>) -> Result<NmRule, NmError> {
    let family = match r.required::<i32>("family")? {
        2 => Family::Ipv4,
        10 => Family::Ipv6,
        other => return Err(r.error("family", format!("{other} is neither 2 (IPv4) nor 10 (IPv6)"))),
    };
    let prefix = |addr: &str, len: &str| -> Result<Option<IpNet>, NmError> {
        if r.optional::<&str>(addr)?.is_none() {
            return Ok(None);
        }
        let net = r.network_u8(addr, len)?;
        if Family::of_net(&net) != family {
            return Err(r.error(addr, format!("{net} is not of the rule's family {family}")));
        }
        Ok(Some(net).filter(|n| n.prefix_len() > 0))
    };
    let fwmark = match (r.optional::<u32>("fwmark")?, r.optional::<u32>("fwmask")?) {
        (None | Some(0), None | Some(0)) => None,
        (mark, mask) => Some((mark.unwrap_or(0), mask.unwrap_or(0))),
    };
    let selector = RuleSelector {
        from: prefix("from", "from-len")?,
        to: prefix("to", "to-len")?,
        iif: r.ifname("iifname")?,
        oif: r.ifname("oifname")?,
        fwmark,
        tos: r.optional::<u8>("tos")?.filter(|t| *t != 0),
        ipproto: r.optional::<u8>("ipproto")?.filter(|p| *p != 0),
        sport: r.ports("sport")?,
        dport: r.ports("dport")?,
        suppress_prefixlength: r
            .optional::<i32>("suppress-prefixlength")?
            .and_then(|n| u32::try_from(n).ok()),
        invert: r.optional::<bool>("invert")?.unwrap_or(false),
    };
    let unchecked = match (
        r.optional::<u32>("uid-range-start")?,
        r.optional::<u32>("uid-range-end")?,
    ) {
        (None, None) => Vec::new(),
        (start, end) => vec![format!(
            "uidrange {}-{}",
            start.unwrap_or(0),
            end.or(start).unwrap_or(0)
        )],
    };
    Ok(NmRule {
        family,
        priority: r.optional::<u32>("priority")?,
        selector,
        action: rule_action(r)?,
        unchecked,
    })
}

/// `action` (absent: a table lookup, which needs `table`), as the kernel's
/// `FR_ACT_*` numbers it.
fn rule_action(r: &Fields<'_>) -> Result<RuleAction, NmError> {
    Ok(match r.optional::<u8>("action")?.unwrap_or(1) {
        1 => match r.optional::<u32>("table")?.filter(|t| *t != 0) {
            Some(t) => RuleAction::Table(t),
            None => {
                return Err(r.error(
                    "table",
                    "is missing: a rule that looks up a table needs one".into(),
                ))
            }
        },
        3 => RuleAction::Nop,
        6 => RuleAction::Blackhole,
        7 => RuleAction::Unreachable,
        8 => RuleAction::Prohibit,
        other => {
            return Err(r.error(
                "action",
                format!("{other} is not a rule action routewarden knows"),
            ))
        }
    })
}

/// One property map (a setting, a route, a rule, an object's properties), with
/// typed getters whose errors name the object and the field.
struct Fields<'a> {
    object: &'a str,
    prefix: &'a str,
    map: &'a HashMap<String, OwnedVariant>,
}

impl<'a> Fields<'a> {
    fn new(object: &'a str, prefix: &'a str, map: &'a HashMap<String, OwnedVariant>) -> Fields<'a> {
        Fields { object, prefix, map }
    }

    /// A field of type `T` (`&str` for `s`, `u32` for `u`, `i64` for `x`, `bool` for `b`...).
    fn optional<T>(&self, key: &str) -> Result<Option<T>, NmError>
    where
        T: TryFrom<&'a OwnedVariant, Error = zbus::Error>,
    {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        T::try_from(value)
            .map(Some)
            .map_err(|_| self.error(key, format!("has unexpected type {}", value.value_signature())))
    }

    fn required<T>(&self, key: &str) -> Result<T, NmError>
    where
        T: TryFrom<&'a OwnedVariant, Error = zbus::Error>,
    {
        self.optional(key)?
            .ok_or_else(|| self.error(key, "is missing".to_owned()))
    }

    /// An `aa{sv}` field (absent: empty).
    fn dicts(&self, key: &str) -> Result<Vec<HashMap<String, OwnedVariant>>, NmError> {
        let Some(value) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let bad = || self.error(key, format!("has unexpected type {}", value.value_signature()));
        let copy = value.try_clone().map_err(|_| bad())?;
        Vec::<HashMap<String, OwnedVariant>>::try_from(copy).map_err(|_| bad())
    }

    /// An address field (`s`), when present.
    fn address(&self, key: &str) -> Result<Option<IpAddr>, NmError> {
        match self.optional::<&str>(key)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| self.error(key, format!("{text:?} is not an IP address"))),
        }
    }

    /// An address with a `u` prefix length, host bits cleared.
    fn network(&self, addr: &str, len: &str) -> Result<IpNet, NmError> {
        let prefix = self.required::<u32>(len)?;
        self.net(addr, len, prefix)
    }

    /// An interface name field (`s`), when present.
    fn ifname(&self, key: &str) -> Result<Option<IfName>, NmError> {
        match self.optional::<&str>(key)? {
            None => Ok(None),
            Some(name) => IfName::new(name)
                .map(Some)
                .map_err(|e| self.error(key, e.to_string())),
        }
    }

    /// A port range `<what>-start`..`<what>-end` (`q`; the end defaults to the start).
    fn ports(&self, what: &str) -> Result<Option<(u16, u16)>, NmError> {
        let (first, last) = (format!("{what}-start"), format!("{what}-end"));
        let start = self.optional::<u16>(&first)?;
        let end = self.optional::<u16>(&last)?;
        match (start.unwrap_or(0), end.or(start).unwrap_or(0)) {
            (0, 0) => Ok(None),
            (a, b) if a <= b => Ok(Some((a, b))),
            (a, b) => Err(self.error(&last, format!("{b} is below the start {a}"))),
        }
    }

    /// An address with a `y` prefix length (routing rules).
    fn network_u8(&self, addr: &str, len: &str) -> Result<IpNet, NmError> {
        let prefix = self.optional::<u8>(len)?.unwrap_or(u8::MAX);
        self.net(addr, len, u32::from(prefix))
    }

    fn net(&self, addr: &str, len: &str, prefix: u32) -> Result<IpNet, NmError> {
        let ip = self
            .address(addr)?
            .ok_or_else(|| self.error(addr, "is missing".to_owned()))?;
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix == u32::from(u8::MAX) {
            full
        } else {
            prefix
        };
        u8::try_from(prefix)
            .ok()
            .and_then(|p| IpNet::new(ip, p).ok())
            .map(|n| n.trunc())
            .ok_or_else(|| self.error(len, format!("{prefix} is not a prefix length for {ip}")))
    }

    /// An object path property; `/` (none) as None.
    fn object_path(&self, key: &str) -> Result<Option<String>, NmError> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        let path = <&ObjectPath<'_>>::try_from(&**value)
            .map_err(|_| self.error(key, format!("has unexpected type {}", value.value_signature())))?;
        Ok(Some(path.as_str().to_owned()).filter(|p| p != "/"))
    }

    /// `StateReason` (`(uu)`: state, reason).
    fn state_reason(&self) -> Result<(u32, u32), NmError> {
        let key = "StateReason";
        let value = self
            .map
            .get(key)
            .ok_or_else(|| self.error(key, "is missing".to_owned()))?;
        <(u32, u32)>::try_from(&**value)
            .map_err(|_| self.error(key, format!("has unexpected type {}", value.value_signature())))
    }

    fn error(&self, key: &str, problem: String) -> NmError {
        NmError::Reply {
            object: format!("{} {}{key}", self.object, self.prefix),
            problem,
        }
    }
}
