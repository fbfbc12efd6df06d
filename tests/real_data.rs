//! Real tasks and recorded rationales through the binary: `data list`, `data stats`,
//! `extract`, a tiny run of a real-task spec, and clear errors for bad data.

mod common;
use common::*;
use std::io::Write;

const SVAMP_TINY: &str = r#"
[experiment]
name = "tiny"
[data]
task = "svamp"
split = "mcc-kd"
max_train = 20
max_test = 6
max_validation = 4
validation = 5
[teacher]
kind = "file"
sources = ["gpt35-mcc-kd", "davinci002-zscot"]
[student]
d_model = 32
layers = 1
heads = 2
max_seq_len = 160
vocab_size = 400
[score]
warmup_steps = 4
[select]
per_question = 3
[train]
steps = 4
batch_size = 8
warmup_steps = 1
eval_every = 2
[eval]
max_new_tokens = 8
"#;

#[test]
fn data_list_and_stats() {
    let p = Project::new("");
    let o = p
        .cmd()
        .args(["data", "list"])
        .env("MORSD_DATA", data_root())
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for needle in [
        "svamp",
        "split mcc-kd",
        "train 700 / validation 150 / test 150",
        "gpt35-mcc-kd",
        "commonsense_qa",
        "tracking_shuffled_objects",
    ] {
        assert!(t.contains(needle), "{needle} not in {t}");
    }
    let o = p
        .cmd()
        .args(["data", "stats", "svamp", "--source", "gpt35-mcc-kd"])
        .env("MORSD_DATA", data_root())
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // 10 rationales for each of the 700 training questions; about 67% end in the gold number.
    assert!(t.contains("| train | 700 | 700 | 10 / 10.00 / 10 |"), "{t}");
    let acc: f64 = t
        .lines()
        .find(|l| l.starts_with("| train"))
        .unwrap()
        .split('|')
        .nth(5)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!((60.0..75.0).contains(&acc), "{t}");
    // A data root without the files says which file is missing.
    let o = p
        .cmd()
        .args([
            "data",
            "stats",
            "svamp",
            "--root",
            p.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("svamp-gpt35-multi"), "{}", text(&o));
}

#[test]
fn extract_command_adds_fields() {
    let p = Project::new("");
    let mut child = p
        .cmd()
        .args(["extract", "--task", "svamp", "--gold", "gold"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"text\": \"3 + 4 = 7. The answer is 7.\", \"gold\": \"7\"}\n{\"text\": \"no idea\", \"gold\": 2}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["extracted"], "7");
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[1]["extracted"], serde_json::Value::Null);
    assert_eq!(lines[1]["correct"], false);
    let o = p.morsd(&["extract", "--task", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tiny_real_task_run_pools_sources() {
    let p = Project::new(SVAMP_TINY);
    let spec = p.spec();
    let o = p
        .cmd()
        .args(["run", spec.to_str().unwrap()])
        .env("MORSD_DATA", data_root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let runs = p.runs_json("tiny");
    assert_eq!(runs["runs"][0]["task"], "svamp");
    // The generate entry pooled both sources for the 20 training questions: 10 + 1 each.
    let gen_dir = std::fs::read_dir(p.path().join("cache/entries/generate"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rationales: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(gen_dir.join("rationales.json")).unwrap()).unwrap();
    assert_eq!(rationales.len(), 20 * 11);
    // MCC-KD has its own dev split (150): `max_validation` cuts it, `max_test` cuts test.
    let tasks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gen_dir.join("tasks.json")).unwrap()).unwrap();
    let len = |k: &str| tasks[k].as_array().unwrap().len();
    assert_eq!((len("train"), len("validation"), len("test")), (20, 4, 6));
    let sources: std::collections::BTreeSet<&str> = rationales
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        ["davinci002-zscot", "gpt35-mcc-kd"]
    );
    // Changing an input file's content (same path) makes generate stale.
    let root = tempfile::tempdir().unwrap();
    copy_tree(
        &data_root(),
        root.path(),
        &["svamp-gpt35-multi", "teacher-logs-davinci002"],
    );
    // `morsd CMD SPEC` against the copied data root.
    let at_root = |cmd: &str| {
        p.cmd()
            .args([cmd, spec.to_str().unwrap()])
            .env("MORSD_DATA", root.path())
            .output()
            .unwrap()
    };
    let o = at_root("plan");
    assert!(
        text(&o).contains("5 fresh"),
        "same content under another root must stay fresh: {}",
        text(&o)
    );
    let f = root.path().join("svamp-gpt35-multi/train.json");
    let t = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("Danny", "Danni", 1);
    std::fs::write(&f, t).unwrap();
    let o = at_root("plan");
    assert!(
        text(&o).lines().any(|l| l.starts_with("generate")
            && l.contains("input svamp-gpt35-multi/train.json changed")),
        "{}",
        text(&o)
    );
    // A file that is not what the spec says is an error naming the file.
    std::fs::write(&f, "{\"not\": \"a list\"}").unwrap();
    let o = at_root("run");
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("svamp-gpt35-multi/train.json"),
        "{}",
        text(&o)
    );
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path, dirs: &[&str]) {
    for d in dirs {
        for e in walkdir::WalkDir::new(from.join(d)).into_iter().flatten() {
            let rel = e.path().strip_prefix(from).unwrap();
            if e.file_type().is_dir() {
                std::fs::create_dir_all(to.join(rel)).unwrap();
            } else {
                std::fs::copy(e.path(), to.join(rel)).unwrap();
            }
        }
    }
}

#[test]
fn real_task_spec_errors_name_the_key() {
    let bad = |spec: &str, env_root: bool, needles: &[&str]| {
        let p = Project::new(spec);
        let mut c = p.cmd();
        c.args(["plan", p.spec().to_str().unwrap()]);
        if env_root {
            c.env("MORSD_DATA", data_root());
        } else {
            c.env_remove("MORSD_DATA");
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        for n in needles {
            assert!(text(&o).contains(n), "{n} not in {}", text(&o));
        }
    };
    bad(
        "[data]\ntask = \"svamp\"\n[teacher]\nkind = \"file\"\n",
        false,
        &["data.root", "MORSD_DATA"],
    );
    bad(
        "[data]\ntask = \"svamp\"\n[teacher]\nkind = \"file\"\nsources = [\"gpt5\"]\n",
        true,
        &["teacher.sources", "gpt5", "gpt35-mcc-kd"],
    );
    bad(
        "[data]\ntask = \"svamp\"\n",
        true,
        &["teacher.kind", "file"],
    );
    bad(
        "[data]\ntask = \"svamp\"\nsplit = \"random\"\n[teacher]\nkind = \"file\"\n",
        true,
        &["data.split", "mcc-kd"],
    );
    bad(
        "[data]\ntask = \"mnist\"\n",
        true,
        &["data.task", "mnist", "svamp"],
    );
}
