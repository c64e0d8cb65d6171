//! `ocisync completions SHELL` and `ocisync man`: bash runs the completion script, groff
//! renders the man pages, and both know every subcommand `ocisync --help` lists.

use std::path::Path;
use std::process::Command;

use crate::support::ocisync;

/// The subcommands `ocisync --help` lists (clap's own `help` aside).
fn subcommands() -> Vec<String> {
    let help = ocisync(&["--help"]).expect_code(0).stdout.clone();
    let listed: Vec<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(listed.len() >= 7, "{help}");
    listed
}

/// What bash's completion offers for `ocisync WORDS…` (the last word being completed),
/// with the script `ocisync completions bash` printed.
fn bash_completions(script: &Path, words: &[&str]) -> Vec<String> {
    let words_array = words
        .iter()
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let current = words.last().unwrap();
    let previous = words[words.len() - 2];
    let program = format!(
        "source '{}'; COMP_WORDS=({words_array}); COMP_CWORD={}; _ocisync ocisync '{current}' '{previous}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
    );
    let output = Command::new("bash").args(["-c", &program]).output().expect("bash");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_offers_every_subcommand_and_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ocisync.bash");
    std::fs::write(&script, ocisync(&["completions", "bash"]).expect_code(0).stdout.clone()).unwrap();

    let offered = bash_completions(&script, &["ocisync", ""]);
    for subcommand in subcommands() {
        assert!(offered.contains(&subcommand), "{subcommand} not offered: {offered:?}");
    }
    let once_flags = bash_completions(&script, &["ocisync", "once", "--"]);
    for flag in ["--config", "--report", "--shard", "--push-metrics"] {
        assert!(
            once_flags.iter().any(|offered| offered == flag),
            "{flag}: {once_flags:?}"
        );
    }
    let shells = bash_completions(&script, &["ocisync", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|offered| offered == shell), "{shell}: {shells:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let zsh = ocisync(&["completions", "zsh"]).expect_code(0).stdout.clone();
    assert!(zsh.starts_with("#compdef ocisync"), "{zsh}");
    let fish = ocisync(&["completions", "fish"]).expect_code(0).stdout.clone();
    for subcommand in subcommands() {
        assert!(zsh.contains(&format!("'{subcommand}:")), "zsh: {subcommand}");
        assert!(fish.contains(&format!("-a \"{subcommand}\"")), "fish: {subcommand}");
    }
    ocisync(&["completions", "tcsh"]).expect_code(2);
}

/// A man page as `man` shows it: groff's plain text (Debian's `groff-base`), with
/// every groff warning turned on and none given.
fn render_man_page(roff: &[u8]) -> String {
    use std::io::Write as _;
    let mut groff = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou", "-ww"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff (Debian's groff-base; `make deps` installs it)");
    groff.stdin.take().unwrap().write_all(roff).unwrap();
    let output = groff.wait_with_output().unwrap();
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && warnings.is_empty(), "groff: {warnings}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_man_page_renders_and_names_every_subcommand() {
    let page = render_man_page(ocisync(&["man"]).expect_code(0).stdout.clone().as_bytes());
    assert!(page.contains("NAME\n       ocisync - "), "{page}");
    assert!(page.contains("--log-format"), "{page}");
    for subcommand in subcommands() {
        assert!(
            page.contains(&format!("ocisync-{subcommand}(1)")),
            "{subcommand}: {page}"
        );
    }
}

#[test]
fn man_dir_writes_a_page_for_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    ocisync(&["man", "--dir", path]).expect_code(0);
    let main_page = render_man_page(&std::fs::read(dir.path().join("ocisync.1")).unwrap());
    assert!(main_page.contains("SUBCOMMANDS"), "{main_page}");
    for subcommand in subcommands() {
        let file = dir.path().join(format!("ocisync-{subcommand}.1"));
        let page = render_man_page(&std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())));
        // groff justifies lines: compare words.
        let words = page.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(&format!("NAME ocisync-{subcommand} - ")), "{page}");
    }
    let once = render_man_page(&std::fs::read(dir.path().join("ocisync-once.1")).unwrap());
    assert!(once.contains("--push-metrics"), "{once}");
    // A directory that cannot be written is an error naming it.
    let missing = dir.path().join("missing");
    let run = ocisync(&["man", "--dir", missing.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot write the man pages into"), "{}", run.stderr);
}
