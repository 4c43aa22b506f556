//! Observe stage, systemd side: the expected units' properties over D-Bus.
