//! `wavessm runs`: a study at a glance (status, progress, best and test metrics, differing
//! config keys), sorting and formats, `runs diff`, and a true status after a crash.

use std::path::Path;
use std::process::{Command, Output};

fn wavessm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(args)
        .current_dir(dir)
        .env_remove("WAVESSM_CONFIG_DIR")
        .output()
        .expect("run wavessm")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn runs_lists_compares_and_diffs_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let small = [
        "model.n_layers=1",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.progress_bar=never",
        "name=cmp",
    ];
    for d in ["model.d_model=8", "model.d_model=16"] {
        ok(&wavessm(dir.path(), &[&["fit", d][..], &small[..]].concat()));
    }
    let csv = ok(&wavessm(dir.path(), &["runs", "--format", "csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in ["name", "status", "epochs", "steps", "best val/accuracy", "test/accuracy", "model.d_model"] {
        assert!(header.contains(&col), "{col} missing: {csv}");
    }
    assert!(!header.contains(&"model.n_layers"), "equal keys are not columns: {csv}");
    let at =
        |row: &str, col: &str| row.split(',').nth(header.iter().position(|h| *h == col).unwrap()).unwrap().to_string();
    assert_eq!(at(lines[1], "status"), "finished");
    assert_eq!(at(lines[1], "epochs"), "2");
    assert_eq!((at(lines[1], "model.d_model"), at(lines[2], "model.d_model")), ("8".into(), "16".into()));
    // Sorted best-first by the test metric.
    let sorted = ok(&wavessm(dir.path(), &["runs", "runs", "--sort", "test/accuracy", "--format", "json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&sorted).unwrap();
    let acc: Vec<f64> = rows.iter().map(|r| r["test/accuracy"].as_f64().unwrap()).collect();
    assert!(acc[0] >= acc[1], "{acc:?}");
    let md = ok(&wavessm(dir.path(), &["runs", "--format", "md"]));
    assert!(md.starts_with("| name | version | status |") && md.lines().nth(1).unwrap().starts_with("|---|"), "{md}");
    let diff = ok(&wavessm(dir.path(), &["runs", "diff", "runs/cmp/version_0", "runs/cmp/version_1"]));
    assert_eq!(diff, "model.d_model: 8 -> 16\n");

    // A run whose process died without a clean end is `crashed`, not `running`.
    let run = dir.path().join("runs/cmp/version_0");
    let status = std::fs::read_to_string(run.join("status.json")).unwrap().replace("\"finished\"", "\"running\"");
    std::fs::write(run.join("status.json"), status).unwrap();
    let table = ok(&wavessm(dir.path(), &["runs"]));
    assert!(table.lines().nth(1).unwrap().contains("crashed"), "{table}");
    let e = wavessm(dir.path(), &["runs", "nowhere"]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("nowhere"));
}

#[test]
fn plot_draws_learning_curves_of_several_runs() {
    let dir = tempfile::tempdir().unwrap();
    let small =
        ["model.n_layers=1", "trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.progress_bar=never"];
    for d in ["model.d_model=8", "model.d_model=16"] {
        ok(&wavessm(dir.path(), &[&["fit", d][..], &small[..]].concat()));
    }
    let out = ok(&wavessm(dir.path(), &["plot", "runs", "--out", "c.png"]));
    assert!(out.contains("2 runs") && out.contains("val/accuracy") && out.contains("train/loss"), "{out}");
    let png = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dir.path().join("c.png")).unwrap()));
    let info = png.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (1280, 840), "two columns, two rows of panels");
    ok(&wavessm(dir.path(), &["plot", "runs", "--metrics", "val/loss", "--out", "c.svg"]));
    let svg = std::fs::read_to_string(dir.path().join("c.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("model.d_model=8") && svg.contains("model.d_model=16"),
        "legend from differing keys"
    );
    for (args, word) in [
        (&["plot", "runs", "--metrics", "val/nope", "--out", "x.png"][..], "val/nope"),
        (&["plot", "runs", "--out", "x.jpg"][..], ".png or .svg"),
        (&["plot", "elsewhere"][..], "elsewhere"),
    ] {
        let o = wavessm(dir.path(), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(word), "{args:?}: {err}");
    }
}
