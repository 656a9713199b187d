//! Makes `sqlx::migrate!` notice new migration files.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
