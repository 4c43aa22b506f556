//! Record NetworkManager's D-Bus replies as fixtures for the parser tests
//! (`agent/tests/fixtures/networkmanager/`): for each device its `GetAll` of
//! `org.freedesktop.NetworkManager.Device` and, when activated, its
//! `GetAppliedConnection`; for each profile its `GetSettings` and its `GetAll` of
//! `...Settings.Connection`. Each reply's body is written as it came off the bus:
//! a comment line (method, object, signature, byte order), then the bytes in hex.
//!
//! Usage: `nm_capture BUS_ADDRESS OUT_DIR` (run by `capture.py` there, as root, in
//! the booted test node's PID namespace: NetworkManager refuses callers it cannot
//! see). No secrets are in these replies.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zbus::{Connection, Message, OwnedObjectPath};

const NM: &str = "org.freedesktop.NetworkManager";
const PROPS: &str = "org.freedesktop.DBus.Properties";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, out] = args.as_slice() else {
        bail!("usage: nm_capture BUS_ADDRESS OUT_DIR");
    };
    let out = PathBuf::from(out);
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let devices: Vec<OwnedObjectPath> = call(&conn, "/org/freedesktop/NetworkManager", NM, "GetDevices", &())
        .await?
        .body()
        .deserialize()?;
    for path in devices {
        capture_device(&conn, &path, &out).await?;
    }
    let settings = "/org/freedesktop/NetworkManager/Settings";
    let profiles: Vec<OwnedObjectPath> =
        call(&conn, settings, &format!("{NM}.Settings"), "ListConnections", &())
            .await?
            .body()
            .deserialize()?;
    for path in profiles {
        capture_profile(&conn, &path, &out).await?;
    }
    Ok(())
}

async fn capture_device(conn: &Connection, path: &OwnedObjectPath, out: &Path) -> anyhow::Result<()> {
    let iface = format!("{NM}.Device");
    let props = call(conn, path, PROPS, "GetAll", &(iface.as_str(),)).await?;
    let map: std::collections::HashMap<String, zbus::OwnedVariant> = props.body().deserialize()?;
    let name = map
        .get("Interface")
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or("unknown")
        .to_owned();
    let state = map.get("State").and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    write(
        out,
        &format!("device-{name}.props"),
        "GetAll Device",
        path,
        &props,
    )?;
    if state == 100 {
        let applied = call(conn, path, &iface, "GetAppliedConnection", &(0u32,)).await?;
        write(
            out,
            &format!("device-{name}.applied"),
            "GetAppliedConnection",
            path,
            &applied,
        )?;
    }
    Ok(())
}

async fn capture_profile(conn: &Connection, path: &OwnedObjectPath, out: &Path) -> anyhow::Result<()> {
    let iface = format!("{NM}.Settings.Connection");
    let settings = call(conn, path, &iface, "GetSettings", &()).await?;
    type Settings = std::collections::HashMap<String, std::collections::HashMap<String, zbus::OwnedVariant>>;
    let map: Settings = settings.body().deserialize()?;
    let id = map
        .get("connection")
        .and_then(|c| c.get("id"))
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or("unknown");
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    write(
        out,
        &format!("profile-{name}.settings"),
        "GetSettings",
        path,
        &settings,
    )?;
    let props = call(conn, path, PROPS, "GetAll", &(iface.as_str(),)).await?;
    write(
        out,
        &format!("profile-{name}.props"),
        "GetAll Settings.Connection",
        path,
        &props,
    )
}

async fn call<B>(
    conn: &Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
) -> anyhow::Result<Message>
where
    B: serde::Serialize + zbus::wire::DynamicType,
{
    conn.call_method(Some(NM), path, Some(iface), method, body)
        .await
        .with_context(|| format!("{iface}.{method} on {path}"))
}

fn write(out: &Path, name: &str, what: &str, path: &str, reply: &Message) -> anyhow::Result<()> {
    let body = reply.body();
    let data = body.data();
    let order = match data.context().endian() {
        zbus::wire::Endian::Little => "little-endian",
        zbus::wire::Endian::Big => "big-endian",
    };
    let hex: String = data.bytes().iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("# {what} {path} signature {} {order}\n{hex}\n", body.signature());
    let file = out.join(format!("{name}.hex"));
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}
