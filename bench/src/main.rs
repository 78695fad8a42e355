//! `switchboard-bench`: see `switchboard-bench --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(switchboard_bench::main_with(&args));
}
