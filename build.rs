//! Rebuilds when a migration is added or changed: `embed_migrations!` reads
//! the folder at compile time, and Cargo would not otherwise notice it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
