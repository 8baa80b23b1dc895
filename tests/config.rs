//! Composition, both override dialects, and every error message of the config system.

use std::path::PathBuf;

use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;

fn resolve(tokens: &[&str]) -> Result<ExperimentConfig, String> {
    ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
        .resolve()
        .map_err(|e| e.to_string())
}

fn err(tokens: &[&str]) -> String {
    resolve(tokens).expect_err("should fail")
}

#[test]
fn embedded_default_composes_from_groups() {
    let c = resolve(&[]).unwrap();
    assert_eq!(c.name, "digits-s4d");
    assert_eq!(c.data.name, "digits");
    assert_eq!(c.model.layer.name, "s4d");
    assert_eq!(c.model.d_model, 64, "root body overrides the model group (`_self_` last)");
    assert_eq!(c.trainer.max_epochs, 20);
    // Defaults of the typed configs are filled in and printed.
    assert!(c.to_yaml().contains("dt_min: 0.001"), "{}", c.to_yaml());
}

#[test]
fn hydra_overrides_groups_and_experiments() {
    let c = resolve(&["trainer.max_epochs=2", "model.layer.d_state=32", "seed=7", "loader.batch_size=8"]).unwrap();
    assert_eq!((c.trainer.max_epochs, c.seed, c.loader.batch_size), (2, 7, 8));
    assert_eq!(c.model.layer.options.get("d_state").and_then(|v| v.as_u64()), Some(32));

    let c = resolve(&["experiment=smnist/s4d", "model.n_layers=2"]).unwrap();
    assert_eq!(c.name, "smnist-s4d");
    assert_eq!(c.data.name, "smnist", "experiment's `override /data` applies");
    assert_eq!((c.model.n_layers, c.model.d_model, c.trainer.max_epochs), (2, 128, 100));

    // A command-line group choice wins over the experiment's.
    let c = resolve(&["experiment=smnist/s4d", "data=psmnist"]).unwrap();
    assert_eq!(c.data.name, "psmnist");

    // + adds, ++ forces, ~ removes, null sets null.
    let c =
        resolve(&["+trainer.limit_train_batches=3", "trainer.max_steps=null", "~trainer.log_every_n_steps"]).unwrap();
    assert_eq!(c.trainer.limit_train_batches, Some(3));
    assert_eq!(c.trainer.max_steps, None);
    assert_eq!(c.trainer.log_every_n_steps, 50, "removed key falls back to its default");
    assert!(err(&["+trainer.max_epochs=3"]).contains("already exists"));
    let c = resolve(&["++trainer.max_epochs=3"]).unwrap();
    assert_eq!(c.trainer.max_epochs, 3);
    assert!(err(&["~trainer.nope"]).contains("does not exist"));

    // Later overrides win.
    let c = resolve(&["trainer.max_epochs=2", "trainer.max_epochs=5"]).unwrap();
    assert_eq!(c.trainer.max_epochs, 5);
}

#[test]
fn lightning_files_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, "name: from-a\ntrainer:\n  max_epochs: 4\n").unwrap();
    std::fs::write(&b, "defaults:\n  - override /data: adding\n  - override /task: regression\ntrainer:\n  max_epochs: 6\n  monitor: val/mse\n  mode: min\nname: no\n").unwrap();
    let req =
        |files: Vec<PathBuf>, tokens: Vec<String>| ConfigRequest { files, tokens, ..Default::default() }.resolve();
    let c = req(vec![a.clone()], vec![]).unwrap();
    assert_eq!((c.name.as_str(), c.trainer.max_epochs), ("from-a", 4));
    // Files apply in order; a file's defaults re-select groups; YAML 1.2 keeps `no` a string.
    let c = req(vec![a.clone(), b.clone()], vec![]).unwrap();
    assert_eq!(c.trainer.max_epochs, 6);
    assert_eq!(c.data.name, "adding");
    assert_eq!(c.name, "no");
    // `--key value` flags arrive as tokens after argv rewriting and win over files.
    let argv =
        wavessm::cli::args::lightning_to_hydra(vec!["--trainer.max_epochs".into(), "9".into(), "--seed=3".into()]);
    let c = req(vec![a], argv).unwrap();
    assert_eq!((c.trainer.max_epochs, c.seed), (9, 3));
}

#[test]
fn user_config_dir_overrides_embedded_groups() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("model")).unwrap();
    std::fs::write(dir.path().join("model/tiny.yaml"), "d_model: 8\nn_layers: 1\nff: 2\nlayer: s4d\n").unwrap();
    let c =
        ConfigRequest { config_dirs: vec![dir.path().into()], tokens: vec!["model=tiny".into()], ..Default::default() }
            .resolve()
            .unwrap();
    assert_eq!(c.model.ff, 2, "the user's group file is used");
    assert_eq!((c.model.d_model, c.model.n_layers), (64, 4), "the root body still applies after the group");
    assert_eq!(c.model.layer.name, "s4d");
}

#[test]
fn unknown_key_names_path_and_suggestion() {
    let e = err(&["trainer.max_epoch=3"]);
    assert!(e.contains("`trainer.max_epoch`"), "{e}");
    assert!(e.contains("unknown key"), "{e}");
    assert!(e.contains("did you mean `max_epochs`?"), "{e}");
    assert!(e.contains("max_steps"), "lists valid keys: {e}");
    let e = err(&["model.layer.d_stat=3"]);
    assert!(e.contains("`model.layer.d_stat`") && e.contains("did you mean `d_state`?"), "{e}");
    let e = err(&["optimizer.lrr=0.1"]);
    assert!(e.contains("`optimizer.lrr`") && e.contains("`lr`"), "{e}");
}

#[test]
fn wrong_type_names_path_expected_type_and_value() {
    let e = err(&["trainer.max_epochs=abc"]);
    assert!(e.contains("`trainer.max_epochs`"), "{e}");
    assert!(e.contains("wrong type"), "{e}");
    assert!(e.contains("\"abc\""), "{e}");
    let e = err(&["model.layer.dt_min=fast"]);
    assert!(e.contains("`model.layer.dt_min`") && e.contains("f64"), "{e}");
    let e = err(&["model.layer.disc=euler"]);
    assert!(e.contains("`model.layer.disc`") && e.contains("allowed: zoh, bilinear, dss"), "{e}");
    assert_eq!(
        resolve(&["model.layer.disc=bilinear"]).unwrap().model.layer.options["disc"],
        serde_yaml::Value::from("bilinear")
    );
    let e = err(&["model.norm=group"]);
    assert!(e.contains("`model.norm`") && e.contains("layer, batch, none"), "{e}");
}

#[test]
fn unknown_registry_name_lists_the_valid_ones() {
    let e = err(&["model.layer._name_=s4x"]);
    assert!(
        e.contains("`model.layer._name_`") && e.contains("unknown layer `s4x`") && e.contains("registered: s4d"),
        "{e}"
    );
    let e = err(&["data._name_=mnits"]);
    assert!(
        e.contains("registered: digits, smnist, psmnist, scifar, adding, associative_recall, induction_heads, listops, pathfinder, speech_commands, ucr, text_folder, imdb, aan, wikitext103"),
        "{e}"
    );
    let e = err(&["task._name_=clasification"]);
    assert!(e.contains("did you mean `classification`?"), "{e}");
    let e = err(&["data=cifar"]);
    let mut shipped: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/data"))
        .unwrap()
        .filter_map(|f| f.unwrap().file_name().to_str()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    shipped.sort();
    assert!(
        e.contains("no config `data/cifar.yaml`") && e.contains(&format!("available: {}", shipped.join(", "))),
        "{e}"
    );
    let e = err(&["experiment=smnist/s4"]);
    assert!(e.contains("did you mean `smnist/s4d`?"), "{e}");
}

#[test]
fn invalid_values_are_rejected_with_their_path() {
    let e = err(&["model.layer.d_state=7"]);
    assert!(e.contains("`model.layer.d_state`") && e.contains("even"), "{e}");
    let e = err(&["model.dropout=1.5"]);
    assert!(e.contains("`model.dropout`"), "{e}");
    let e = err(&["optimizer.groups=[{params: '(', lr: 0.1}]"]);
    assert!(e.contains("`optimizer.groups.0.params`") && e.contains("regex"), "{e}");
    let e = err(&["loader.batch_size=0"]);
    assert!(e.contains("`loader.batch_size`"), "{e}");
}

#[test]
fn every_shipped_experiment_resolves() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/experiment");
    let mut n = 0;
    for entry in walk(&root) {
        let rel = entry.strip_prefix(&root).unwrap().with_extension("");
        let name = rel.to_string_lossy().replace('\\', "/");
        resolve(&[&format!("experiment={name}")]).unwrap_or_else(|e| panic!("experiment={name}: {e}"));
        n += 1;
    }
    assert!(n >= 13, "found {n} experiments");
    for name in [
        "lra/s4-listops",
        "lra/s4-imdb",
        "lra/s4-aan",
        "lra/s4-cifar",
        "lra/s4-pathfinder",
        "lra/s4-pathx",
        "smnist/s4d",
        "scifar/s4",
        "sc/s4",
        "lm/s4-wt103",
    ] {
        assert!(root.join(format!("{name}.yaml")).exists(), "published experiment {name} is shipped");
    }
}

#[test]
fn seed_command_lines_work_as_overrides() {
    for tokens in [
        &["model=dss"][..],
        &["model=s4"],
        &["model=liquid_s4", "model.layer.liquid_kernel=polyb", "model.layer.liquid_degree=3"],
        &["model=liquid_s4", "model.layer.mode=diag"],
        &["model=liquid_s4", "model.layer.allcombs=false", "model.layer.liquid_kernel=kb"],
        &["model=s4", "model.layer.init=diag-lin", "model.layer.mode=diag", "model.layer.real_transform=softplus"],
    ] {
        resolve(tokens).unwrap_or_else(|e| panic!("{tokens:?}: {e}"));
    }
    let e = err(&["model=liquid_s4", "model.layer.liquid_degree=1"]);
    assert!(e.contains("model.layer.liquid_degree") && e.contains("≥ 2"), "{e}");
    let e = err(&["model=s4", "model.layer.mode=dense"]);
    assert!(e.contains("mode") && e.contains("nplr"), "{e}");
}

#[test]
fn seed_readme_command_lines_read_as_their_experiments() {
    // Every seed line runs (`every_seed_command_line_runs_or_is_listed_with_its_reason`); here,
    // what a few of them resolve to.
    // The experiment's pipeline supplies data, task and schedule; the command line still wins.
    let c = resolve(&["wandb=null", "model=dss", "experiment=s4-lra-cifar", "train.seed=42", "scheduler.patience=15"])
        .unwrap();
    assert_eq!((c.seed, c.model.d_model, c.model.n_layers, c.loader.batch_size), (42, 512, 6, 50));
    assert_eq!((c.model.layer.name.as_str(), c.data.name.as_str()), ("dss", "scifar"));
    assert_eq!(c.data.options["grayscale"], serde_yaml::Value::Bool(true));
    assert_eq!((c.scheduler.name.as_str(), &c.scheduler.options["patience"]), ("plateau", &15.into()));
    let c = resolve(&["pipeline=mnist", "dataset.permute=False"]).unwrap();
    assert_eq!((c.data.name.as_str(), &c.data.options["permute"]), ("smnist", &false.into()));
    assert_eq!(c.model.d_model, 256, "the reference's model defaults come with the pipeline");
    let c = resolve(&["wandb.project=s4", "wandb.tags=[lra,dss]", "wandb.entity=lab"]).unwrap();
    let w = c.wandb.expect("wandb keys are run metadata");
    assert_eq!((w.project.as_deref(), w.tags.len(), w.entity.as_deref()), (Some("s4"), 2, Some("lab")));

    // A -c file may pick the experiment or the pipeline as well.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("exp.yaml");
    std::fs::write(&f, "defaults:\n  - /experiment: s4-lra-listops\nloader:\n  batch_size: 7\n").unwrap();
    let c = ConfigRequest { files: vec![f.clone()], ..Default::default() }.resolve().unwrap();
    assert_eq!((c.data.name.as_str(), c.seed, c.loader.batch_size), ("listops", 1112, 7));
    std::fs::write(&f, "defaults:\n  - /pipeline: cifar\n").unwrap();
    let c = ConfigRequest { files: vec![f], ..Default::default() }.resolve().unwrap();
    assert_eq!((c.data.name.as_str(), c.scheduler.name.as_str()), ("scifar", "plateau"));
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out
}

#[test]
fn loggers_are_chosen_as_a_list_of_the_logger_group() {
    // Default: csv + tensorboard.
    let c = resolve(&[]).unwrap();
    assert!(c.logger.tensorboard.is_some() && c.logger.mlflow.is_none());
    assert_eq!(c.logger.save_dir, PathBuf::from("runs"));
    // Each selected file adds its key; metrics.csv (and save_dir) stay with mlflow alone.
    let c = resolve(&["logger=[csv,mlflow]", "logger.mlflow.tracking_uri=http://127.0.0.1:9"]).unwrap();
    assert!(c.logger.mlflow.is_some() && c.logger.tensorboard.is_none());
    let c = resolve(&["logger=mlflow", "logger.save_dir=out"]).unwrap();
    assert!(c.logger.mlflow.is_some() && c.logger.tensorboard.is_none());
    assert_eq!(c.logger.save_dir, PathBuf::from("out"));
    assert!(c.to_yaml().contains("csv: {}"), "{}", c.to_yaml());
    let c = resolve(&["logger=[tensorboard]", "logger.tensorboard.log_every_n_epochs=5"]).unwrap();
    assert_eq!(c.logger.tensorboard.unwrap().log_every_n_epochs, Some(5));
    let c = resolve(&["logger=null"]).unwrap();
    assert!(c.logger.tensorboard.is_none() && c.logger.mlflow.is_none());

    // Unknown options and keys name the closest valid one.
    let e = err(&["logger=[csv,tensorbord]"]);
    assert!(e.contains("did you mean `tensorboard`"), "{e}");
    let e = err(&["logger.tensorboard.log_every=2"]);
    assert!(e.contains("logger.tensorboard.log_every") && e.contains("log_every_n_epochs"), "{e}");
    let e = err(&["logger.tensorbord.x=1"]);
    assert!(e.contains("did you mean `tensorboard`"), "{e}");
    let e = err(&["logger.tensorboard.log_every_n_epochs=0"]);
    assert!(e.contains("`logger.tensorboard.log_every_n_epochs`"), "{e}");
    let e = err(&["logger=mlflow", "logger.mlflow.tracking_uri=/tmp/mlruns"]);
    assert!(e.contains("`logger.mlflow.tracking_uri`") && e.contains("http"), "{e}");
    let e = err(&["logger=[csv,{a: 1}]"]);
    assert!(e.contains("config group"), "{e}");
    let e = err(&["experiment=[smnist/s4d,smnist/s4d]"]);
    assert!(e.contains("takes one option"), "{e}");
}

#[test]
fn wandb_keys_are_metadata_and_null_switches_them_off() {
    for off in [&["wandb.project=a", "wandb=null"][..], &["wandb.project=a", "~wandb"], &["wandb.mode=disabled"]] {
        assert!(resolve(off).unwrap().wandb.is_none(), "{off:?}");
    }
    let c = resolve(&["wandb.project=p", "wandb.group=g", "wandb.name=n"]).unwrap();
    assert!(c.to_yaml().contains("project: p"), "written to config.yaml: {}", c.to_yaml());
    let e = err(&["wandb.projet=p"]);
    assert!(e.contains("`wandb.projet`") && e.contains("did you mean `project`"), "{e}");
}

#[test]
fn interpolation_follows_command_line_overrides() {
    let c = resolve(&["experiment=lra/s4-lra-cifar"]).unwrap();
    assert_eq!(c.model.layer.options["n_ssm"], serde_yaml::Value::from(512));
    let c = resolve(&["experiment=lra/s4-lra-cifar", "model.d_model=256"]).unwrap();
    assert_eq!(c.model.layer.options["n_ssm"], serde_yaml::Value::from(256), "`${{..d_model}}` follows the override");
    let yaml = c.to_yaml();
    assert!(!yaml.contains("${"), "the printed config is resolved:\n{yaml}");
    assert!(yaml.contains("n_ssm: 256"), "{yaml}");
    let c = resolve(&["experiment=lm/s4-wt103", "optimizer.lr=0.002"]).unwrap();
    assert_eq!(c.model.layer.options["lr"], serde_yaml::Value::from(0.002));
    // Interpolations typed on the command line and in -c files resolve too; errors name the key.
    let c = resolve(&["+name=run-${model.layer._name_}-${model.n_layers}"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "run-s4d-4");
    let e = err(&["trainer.max_epochs=${trainer.max_epoch}"]);
    assert!(e.contains("`trainer.max_epochs`") && e.contains("`trainer.max_epoch` does not exist"), "{e}");
}

/// Every `python -m train …` line of the seed READMEs (the s4, DSS, Liquid-S4 and aframe
/// seeds), plus the variations their prose asks for, that runs here as it is.
const SEED_LINES: &[&str] = &[
    "wandb=null model=dss pipeline=mnist",
    "wandb=null model=dss experiment=s4-lra-listops",
    "wandb=null model=dss experiment=s4-lra-imdb",
    "wandb=null model=dss experiment=s4-lra-aan",
    "wandb=null model=dss experiment=s4-lra-cifar trainer.max_epochs=200 train.seed=0",
    "wandb=null model=dss experiment=s4-lra-pathfinder scheduler.patience=13",
    "wandb=null model=dss experiment=s4-lra-pathx model.layer.dt_min=0.0001 model.layer.dt_max=0.01 model.layer.lr.log_dt=0.0001 loader.batch_size=16",
    "wandb=null model=dss experiment=s4-sc",
    "wandb=null model=dss experiment=s4-lra-cifar train.seed=42 scheduler.patience=15 trainer.max_epochs=250",
    "wandb=null model=dss experiment=s4-lra-pathx loader.batch_size=8 trainer.accumulate_grad_batches=2",
    "wandb=null pipeline=mnist model=s4",
    "wandb=null experiment=s4-lra-listops",
    "wandb=null experiment=s4-lra-imdb",
    "wandb=null experiment=s4-lra-cifar",
    "wandb=null experiment=s4-lra-aan",
    "wandb=null experiment=s4-lra-pathfinder",
    "wandb=null experiment=s4-lra-pathx",
    "wandb=null experiment=s4-cifar",
    "wandb=null experiment=s4-sc",
    "pipeline=mnist dataset.permute=True model=s4 model.n_layers=3 model.d_model=128 model.norm=batch model.prenorm=True wandb=null",
    "wandb=null experiment=lra/s4-lra-imdb",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=polyb",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=kb",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=polyb model.layer.liquid_degree=3",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=kb model.layer.liquid_degree=3",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=polyb model.layer.mode=diag",
    "wandb=null experiment=lra/s4-lra-imdb model.layer.liquid_kernel=polyb model.layer.allcombs=False",
    // The prose's variations: SC35, a smaller sCIFAR model, train.* keys in other positions.
    "wandb=null experiment=s4-sc dataset.all_classes=true",
    "wandb=null experiment=s4-cifar model.d_model=512 model.n_layers=4",
    "train.seed=3 wandb=null experiment=s4-lra-listops train.monitor=val/loss train.mode=min",
    "wandb=null train.monitor=val/accuracy experiment=s4-sc train.seed=1 train.interval=epoch",
    // `....` stands for any command line; `wandb.*` keys are run metadata.
    ".... wandb.project=s4",
    // WikiText-103 with the adaptive input embedding and softmax (`experiment=lm/s4-wt103`).
    "wandb=null experiment=s4-wt103",
    "wandb=null experiment=s4-wt103 loader.batch_size=4 trainer.accumulate_grad_batches=2",
    // The README's shorthand for two lines (see `run_line`).
    "dataset=mnist model={ckconv,unicornn}",
];

/// Seed lines that cannot run here, each with a fragment of the error it gets (the reason).
const UNSUPPORTED: &[(&str, &str)] = &[
    // Resuming is a flag here (`wavessm fit --resume RUN_DIR`).
    (
        "wandb=null model=dss experiment=s4-lra-pathx model.layer.lr.log_dt=0.0001 model.layer.dt_min=0.0001 model.layer.dt_max=0.01 trainer.resume_from_checkpoint=/--Global--path/dss/outputs/--The--run--dir--/checkpoints/last.ckpt",
        "--resume",
    ),
    // aframe's gravitational-wave data module (`data.ifos`) and its W&B logger (given in
    // LightningCLI's `--trainer.logger=Name --trainer.logger.key=…` shorthand) are not part of
    // wavessm.
    (
        "--config /opt/aframe/projects/train/config.yaml --data.ifos=[H1,L1] --data.data_dir ~/aframe/data/train --trainer.logger=WandbLogger --trainer.logger.project=aframe --trainer.logger.name=my-first-run --trainer.logger.save_dir=~/aframe/results/my-first-run",
        "`trainer.logger`",
    ),
];

/// Seed lines that are no wavessm command line at all, with why.
const NOT_COMMANDS: &[(&str, &str)] = &[(
    ".tune --config /opt/aframe/projects/train/config.yaml",
    "aframe's Ray Tune entry point; sweeps here are `wavessm fit -m` (launcher=local|slurm)",
)];

/// A seed line as `wavessm fit` reads it (LightningCLI flags become tokens; `--config` files
/// of other projects and the READMEs' `....` placeholder are left out). A `key={a,b}` token is
/// the READMEs' shorthand for one line per alternative: each must resolve.
fn run_line(line: &str) -> Result<ExperimentConfig, String> {
    if let Some(at) = line.find("={") {
        let end = line[at..].find('}').map(|e| at + e).ok_or("unclosed `{`")?;
        let mut last = Err("no alternative".to_string());
        for alt in line[at + 2..end].split(',') {
            last = Ok(run_line(&format!("{}={alt}{}", &line[..at], &line[end + 1..]))?);
        }
        return last;
    }
    let mut argv = vec!["wavessm".to_string(), "fit".to_string()];
    argv.extend(line.split_whitespace().map(str::to_string));
    let argv = wavessm::cli::args::lightning_to_hydra(argv);
    let mut tokens = Vec::new();
    let mut it = argv.into_iter().skip(2);
    while let Some(t) = it.next() {
        if t == "--config" {
            it.next();
        } else if t != "...." {
            tokens.push(t);
        }
    }
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    resolve(&tokens)
}

/// `python -m train …` lines of the seed READMEs (`$WAVESSM_SEEDS_DIR`, default
/// `../shared/seeds`), continuation lines joined; `None` when the folder is absent.
fn seed_readme_lines() -> Option<Vec<String>> {
    let dir = std::env::var("WAVESSM_SEEDS_DIR").unwrap_or_else(|_| "../shared/seeds".into());
    let re = regex::Regex::new(r"-m train((?:\.tune)?(?:\s.*|`.*|$))").unwrap();
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")) {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if let Some(c) = re.captures(lines[i]) {
                let mut rest = c[1].split('`').next().unwrap().to_string();
                while rest.trim_end().ends_with('\\') && i + 1 < lines.len() {
                    i += 1;
                    rest = format!("{} {}", rest.trim_end().trim_end_matches('\\'), lines[i].trim());
                }
                out.push(rest.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            i += 1;
        }
    }
    Some(out)
}

#[test]
fn every_seed_command_line_runs_or_is_listed_with_its_reason() {
    for line in SEED_LINES {
        run_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    for (line, reason) in UNSUPPORTED {
        let e = run_line(line).err().unwrap_or_else(|| panic!("{line} runs now: move it to SEED_LINES"));
        assert!(e.contains(reason), "{line}: {e}");
    }
    let c = run_line("wandb=null experiment=s4-sc dataset.all_classes=true").unwrap();
    assert_eq!(c.data.options["classes"], serde_yaml::Value::from("sc35"));
    let c = run_line("wandb=null experiment=s4-wt103 loader.batch_size=4 trainer.accumulate_grad_batches=2").unwrap();
    assert_eq!((c.task.name.as_str(), c.seed, c.loader.batch_size), ("adaptivelm", 1111, 4));
    assert_eq!((&c.task.options["div_val"], c.trainer.accumulate_grad_batches), (&4.into(), 2));
    let c =
        run_line("train.seed=3 wandb=null experiment=s4-lra-listops train.monitor=val/loss train.mode=min").unwrap();
    assert_eq!((c.seed, c.trainer.monitor.as_str(), c.trainer.mode), (3, "val/loss", wavessm::train::Mode::Min));
    // None is dropped silently: every line the READMEs print is in one of the lists.
    let Some(found) = seed_readme_lines() else {
        eprintln!("seed READMEs not found; set WAVESSM_SEEDS_DIR to check the lists against them");
        return;
    };
    assert!(found.len() >= 30, "found only {} seed lines", found.len());
    let listed: Vec<&str> = SEED_LINES
        .iter()
        .copied()
        .chain(UNSUPPORTED.iter().map(|(l, _)| *l))
        .chain(NOT_COMMANDS.iter().map(|(l, _)| *l))
        .collect();
    for line in &found {
        assert!(listed.contains(&line.as_str()), "seed line not in SEED_LINES, UNSUPPORTED or NOT_COMMANDS: {line}");
    }
}

#[test]
fn baseline_experiments_and_the_s4_dataset_name_resolve() {
    // (experiment, model kind, data, task)
    for (name, model, data, task) in [
        ("psmnist/wave_rnn", "wrnn", "psmnist", "classification"),
        ("adding/wave_rnn", "wrnn", "adding", "regression"),
        ("lra/transformer-listops", "transformer", "listops", "classification"),
        ("smnist/lstm", "lstm", "smnist", "classification"),
        ("copying/lstm", "lstm", "copying", "lm"),
        ("lm/transformer-text", "transformer", "wikitext103", "lm"),
    ] {
        let c = resolve(&[&format!("experiment={name}")]).unwrap_or_else(|e| panic!("experiment={name}: {e}"));
        let got = (c.model.display_name(), c.data.name.as_str(), c.task.name.as_str());
        assert_eq!(got, (model, data, task), "experiment={name}");
        c.model.classifier().unwrap_or_else(|e| panic!("experiment={name}: {e}"));
    }
    // The s4 repo's `dataset=mnist` (and `data=mnist`): our sMNIST loader with its defaults,
    // which permute; `dataset.permute=False` reads the pixels in order.
    for tokens in [&["data=mnist"][..], &["dataset=mnist"], &["dataset=mnist", "model=lstm"]] {
        let c = resolve(tokens).unwrap_or_else(|e| panic!("{tokens:?}: {e}"));
        assert_eq!((c.data.name.as_str(), &c.data.options["permute"]), ("smnist", &true.into()), "{tokens:?}");
    }
    let c = resolve(&["dataset=mnist", "dataset.permute=False"]).unwrap();
    assert_eq!(c.data.options["permute"], serde_yaml::Value::Bool(false));
    // The whole wave RNN classifier checks its options under `model.options`.
    let e = err(&["model=wrnn", "model.options.ksize=4"]);
    assert!(e.contains("model.options.ksize"), "{e}");
}
