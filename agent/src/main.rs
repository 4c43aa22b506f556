//! The `routewarden` command.

fn main() {
    println!("routewarden {}", env!("CARGO_PKG_VERSION"));
}
