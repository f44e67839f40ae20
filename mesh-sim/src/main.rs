fn main() {
    eprintln!("mesh-sim: serving is not built yet");
    std::process::exit(1);
}
