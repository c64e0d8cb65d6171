//! The `ocisync` binary; everything it does is in the library's [`ocisync::main`].

fn main() -> std::process::ExitCode {
    ocisync::main()
}
