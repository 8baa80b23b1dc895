//! LightningCLI-style flags (`--trainer.max_epochs 2`, `--data.path=x`) become Hydra tokens
//! (`trainer.max_epochs=2`) in place, so both dialects mix and keep their command-line order.

/// Top-level config keys that may be given as `--key value` (they are no command flags).
const TOP_LEVEL_KEYS: &[&str] = &["seed", "name"];

/// Commands without config overrides, whose own flags (`data generate … --seed 1`) stay.
const PLAIN_COMMANDS: &[&str] = &["data", "bench", "runs", "plot"];

/// Rewrites `--a.b value` and `--a.b=value` (and `--seed 1`, `--name x`) into `a.b=value`;
/// leaves everything else, and the command lines of [`PLAIN_COMMANDS`], alone.
pub fn lightning_to_hydra(argv: Vec<String>) -> Vec<String> {
    if argv.iter().skip(1).find(|a| !a.starts_with('-')).is_some_and(|c| PLAIN_COMMANDS.contains(&c.as_str())) {
        return argv;
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter().peekable();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            out.push(arg);
            continue;
        };
        let key = flag.split('=').next().unwrap_or(flag);
        if !(key.contains('.') || TOP_LEVEL_KEYS.contains(&key)) || key.starts_with(['.', '-']) {
            out.push(arg);
            continue;
        }
        if flag.contains('=') {
            out.push(flag.to_string());
        } else {
            // `--a.b` with no value sets it to true (as a boolean flag would).
            let value = match it.peek() {
                Some(next) if !next.starts_with("--") => it.next().expect("peeked"),
                _ => "true".to_string(),
            };
            out.push(format!("{flag}={value}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_become_tokens_in_order() {
        let got = lightning_to_hydra(v(&[
            "wavessm",
            "fit",
            "-c",
            "a.yaml",
            "--trainer.max_epochs",
            "2",
            "model=s4d",
            "--data.path=../x",
            "--print-config",
            "--x.flag",
        ]));
        assert_eq!(
            got,
            v(&[
                "wavessm",
                "fit",
                "-c",
                "a.yaml",
                "trainer.max_epochs=2",
                "model=s4d",
                "data.path=../x",
                "--print-config",
                "x.flag=true"
            ])
        );
    }

    #[test]
    fn other_commands_keep_their_flags() {
        let argv = v(&["wavessm", "data", "generate", "pathfinder", "--seed", "3", "--out", "x"]);
        assert_eq!(lightning_to_hydra(argv.clone()), argv);
        let got = lightning_to_hydra(v(&["wavessm", "fit", "--seed", "3"]));
        assert_eq!(got, v(&["wavessm", "fit", "seed=3"]));
    }

    #[test]
    fn negative_values_are_values() {
        let got = lightning_to_hydra(v(&["fit", "--model.x", "-1"]));
        assert_eq!(got, v(&["fit", "model.x=-1"]));
    }
}
