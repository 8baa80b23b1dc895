//! The command-line vocabulary of state-spaces/s4 and its forks (the seeds' `python -m train …`
//! lines): keys that mean the same thing here are read as ours, with a note on stderr, so those
//! command lines run unchanged (`wavessm fit wandb=null model=dss experiment=s4-lra-listops
//! train.seed=0`). Their `wandb.*` keys are run metadata here (see the wandb callback).

use super::ConfigError;

/// s4-repo key paths and ours, longest first (a rename applies to the path and its sub-keys).
const RENAMES: &[(&str, &str)] = &[
    ("dataset.data_dir", "data.path"),
    ("data.data_dir", "data.path"),
    ("train.monitor", "trainer.monitor"),
    ("train.mode", "trainer.mode"),
    ("train.seed", "seed"),
    ("train.interval", "scheduler.interval"),
    ("train.test", "trainer.test_after_fit"),
    ("dataset", "data"),
];

/// What a command-line token becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    /// The token to use (unchanged, or renamed).
    Token(String),
    /// Nothing to do here.
    Drop,
}

/// Translates one Hydra token from the s4 repo's vocabulary; `note` receives what was changed.
pub fn translate(token: &str, note: &mut dyn FnMut(String)) -> Result<Translated, ConfigError> {
    let prefix_len = token.len() - token.trim_start_matches(['+', '~']).len();
    let (prefix, rest) = token.split_at(prefix_len);
    let (path, value) = match rest.split_once('=') {
        Some((p, v)) => (p, Some(v)),
        None => (rest, None),
    };
    // W&B switched off, in the seeds' three spellings: no metadata.
    if (path == "wandb" && prefix == "~") || (path == "wandb.mode" && value == Some("disabled")) {
        note(format!("`{token}` read as `wandb=null`"));
        return Ok(Translated::Token("wandb=null".into()));
    }
    if matches!(path, "dataset.all_classes" | "data.all_classes") {
        let classes = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("true") => "sc35",
            Some("false") => "sc10",
            _ => {
                return Err(ConfigError::Override {
                    token: token.into(),
                    why: "`all_classes` is true (Speech Commands' 35 words) or false (the 10-word subset)".into(),
                });
            }
        };
        let new = format!("data.classes={classes}");
        note(format!("`{token}` read as `{new}` (state-spaces/s4 name)"));
        return Ok(Translated::Token(new));
    }
    // The s4 README's WikiText-103 line names the config at its old place.
    if path == "experiment" && value.map(str::trim) == Some("s4-wt103") {
        let new = format!("{prefix}experiment=lm/s4-wt103");
        note(format!("`{token}` read as `{new}` (the config's current place in state-spaces/s4)"));
        return Ok(Translated::Token(new));
    }
    if matches!(path, "train.ignore_warnings" | "train.debug") {
        note(format!("`{token}` ignored: wavessm has no such switch"));
        return Ok(Translated::Drop);
    }
    if path == "trainer.resume_from_checkpoint" {
        return Err(ConfigError::Override {
            token: token.into(),
            why: "resume a run with `wavessm fit --resume <run dir>` (it finds `last.bpk` there)".into(),
        });
    }
    for (theirs, ours) in RENAMES {
        let tail = match path.strip_prefix(theirs) {
            Some(t) if t.is_empty() || t.starts_with('.') => t,
            _ => continue,
        };
        let new = match value {
            Some(v) => format!("{prefix}{ours}{tail}={v}"),
            None => format!("{prefix}{ours}{tail}"),
        };
        note(format!("`{token}` read as `{new}` (state-spaces/s4 name)"));
        return Ok(Translated::Token(new));
    }
    Ok(Translated::Token(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(token: &str) -> (Result<Translated, ConfigError>, Vec<String>) {
        let mut notes = Vec::new();
        let r = translate(token, &mut |n| notes.push(n));
        (r, notes)
    }

    #[test]
    fn s4_names_become_ours() {
        let t = |s: &str| Translated::Token(s.to_string());
        assert_eq!(tr("train.seed=0").0.unwrap(), t("seed=0"));
        assert_eq!(tr("dataset=mnist").0.unwrap(), t("data=mnist"));
        assert_eq!(tr("dataset.permute=True").0.unwrap(), t("data.permute=True"));
        assert_eq!(tr("+dataset.data_dir=/x/listops").0.unwrap(), t("+data.path=/x/listops"));
        assert_eq!(tr("train.monitor=val/loss").0.unwrap(), t("trainer.monitor=val/loss"));
        // Only whole path segments are renamed.
        assert_eq!(tr("datasets.x=1").0.unwrap(), t("datasets.x=1"));
        assert_eq!(tr("trainer.seed=1").0.unwrap(), t("trainer.seed=1"));
        let (r, notes) = tr("model.d_model=8");
        assert_eq!(r.unwrap(), t("model.d_model=8"));
        assert!(notes.is_empty());
        assert!(tr("train.seed=3").1[0].contains("read as `seed=3`"));
        assert_eq!(tr("dataset.all_classes=true").0.unwrap(), t("data.classes=sc35"));
        assert_eq!(tr("dataset.all_classes=False").0.unwrap(), t("data.classes=sc10"));
        assert!(tr("dataset.all_classes=maybe").0.is_err());
        assert_eq!(tr("train.interval=epoch").0.unwrap(), t("scheduler.interval=epoch"));
        assert_eq!(tr("train.ignore_warnings=true").0.unwrap(), Translated::Drop);
    }

    #[test]
    fn wandb_off_is_null_and_its_keys_pass() {
        for off in ["~wandb", "wandb.mode=disabled"] {
            let (r, notes) = tr(off);
            assert_eq!(r.unwrap(), Translated::Token("wandb=null".into()), "{off}");
            assert!(notes[0].contains("wandb=null"), "{notes:?}");
        }
        for t in ["wandb=null", "wandb.project=s4", "+wandb.tags=[a,b]"] {
            assert_eq!(tr(t).0.unwrap(), Translated::Token(t.into()));
        }
        let e = tr("trainer.resume_from_checkpoint=/a/last.ckpt").0.unwrap_err().to_string();
        assert!(e.contains("--resume"), "{e}");
    }
}
