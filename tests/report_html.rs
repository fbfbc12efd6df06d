//! `report.html` in a real browser: a tiny two-strategy, two-seed study is run by the binary in a
//! fresh temp dir, then headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup-browser.sh`) loads the page from disk with `--dump-dom` and a URL fragment
//! that the page's script reads (`#strategy=morsd&sort=rd`), and the test checks the resulting
//! DOM against `runs.json` and `selection.parquet` (read here with polars): the run table's row
//! count and its stop and convergence columns, the "Learning curves" section with its inline
//! SVG drawing one line per run in each panel, that a strategy filter leaves exactly that
//! strategy's selected rationales, the other filters, that sorting by RD orders them, and a
//! screenshot. `morsd report DIR` must rebuild the
//! same page from the folder alone (no cache). Without Chromium the test is skipped with a message,
//! unless `CI` is set: then it fails.

mod common;

use common::{Project, TINY, text};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn study_spec() -> String {
    let spec = TINY
        .replace("seeds = [0]", "seeds = [0, 1]")
        .replace("strategy = \"morsd\"\n", "");
    assert_ne!(spec, TINY, "TINY changed shape; update this test");
    format!("{spec}\n[sweep]\n\"select.strategy\" = [\"random\", \"morsd\"]\n")
}

/// `MORSD_CHROMIUM`, else chromium / chromium-browser / google-chrome on the PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MORSD_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser, or None (skip) when it is absent and `CI` is unset; a failure under CI.
fn chromium_or_skip() -> Option<PathBuf> {
    match find_chromium() {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!(
            "CI is set but no Chromium was found (MORSD_CHROMIUM, or chromium on the PATH): \
             run scripts/setup-browser.sh (apt-get install -y chromium)"
        ),
        None => {
            // Straight to stderr, past the test harness's capture, so the skip is visible.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED report_html: no Chromium (install it with `bash scripts/setup-browser.sh`, \
                 or set MORSD_CHROMIUM); with CI set this is a failure"
            );
            None
        }
    }
}

/// Runs Chromium headless with `args` and the page URL; returns stdout. Output goes to files
/// (a DOM is larger than a pipe's buffer, and nothing reads the pipe while this waits).
fn chromium(browser: &Path, profile: &Path, args: &[String], url: &str) -> String {
    let (out_path, err_path) = (profile.join("stdout.txt"), profile.join("stderr.txt"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("chrome").display()
        ))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait chromium") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 120 s on {url}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium failed on {url}: {}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    std::fs::read_to_string(&out_path).unwrap()
}

fn dump_dom(browser: &Path, profile: &Path, page: &Path, fragment: &str) -> String {
    let url = format!("file://{}#{fragment}", page.display());
    let dom = chromium(browser, profile, &["--dump-dom".to_string()], &url);
    assert!(
        dom.contains("id=\"browser\""),
        "no page in the DOM of {url}"
    );
    dom
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The attributes of every start tag that begins with `open` (e.g. `<tr class="rat"`).
fn tags(dom: &str, open: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(open) {
        let tag_end = rest[i..].find('>').expect("closed tag") + i;
        let tag = &rest[i + 1..tag_end];
        let mut attrs = BTreeMap::new();
        let mut t = tag;
        while let Some(eq) = t.find("=\"") {
            let name = t[..eq].rsplit(' ').next().unwrap_or("").to_string();
            let vend = t[eq + 2..].find('"').expect("quoted value") + eq + 2;
            attrs.insert(name, unescape(&t[eq + 2..vend]));
            t = &t[vend + 1..];
        }
        out.push(attrs);
        rest = &rest[tag_end..];
    }
    out
}

/// The text of every `<th>` or `<td>` cell (`cell` = "th" or "td") in `html`, per row.
fn cells(html: &str, cell: &str) -> Vec<Vec<String>> {
    html.split("<tr")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            row.split(&format!("<{cell}"))
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').expect("closed tag") + 1..];
                    unescape(&c[..c.find(&format!("</{cell}>")).expect("closed cell")])
                })
                .collect()
        })
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

/// The part of `dom` from the start tag that begins with `open` to the next `close`.
fn element<'a>(dom: &'a str, open: &str, close: &str) -> &'a str {
    let i = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the DOM"));
    let end = dom[i..].find(close).expect("closed element") + i;
    &dom[i..end]
}

/// Run lines of a curves SVG, counted by the rule of the chart's unit test: `<polyline`
/// elements of stroke width 2 (dashes are width 3, mesh and axes width 1, the legend draws
/// rectangles).
fn run_polylines(svg: &str) -> usize {
    tags(svg, "<polyline")
        .iter()
        .filter(|a| a.get("stroke-width").is_some_and(|w| w == "2"))
        .count()
}

fn rat_rows(dom: &str) -> Vec<BTreeMap<String, String>> {
    tags(dom, "<tr class=\"rat\"")
}

fn ids(rows: &[BTreeMap<String, String>]) -> BTreeSet<String> {
    rows.iter().map(|r| r["data-id"].clone()).collect()
}

fn shown(dom: &str) -> usize {
    let t = tags(dom, "<b id=\"shown\"");
    t[0]["data-count"].parse().unwrap()
}

fn rds(rows: &[BTreeMap<String, String>]) -> Vec<f64> {
    rows.iter()
        .map(|r| r["data-rd"].parse::<f64>().expect("an RD on every row"))
        .collect()
}

/// selection.parquet as (rationale_id, question_id, correct, rd, selected-by labels).
type Sel = Vec<(String, String, bool, f64, BTreeSet<String>)>;

fn read_selection(path: &Path) -> Sel {
    let f = std::fs::File::open(path).unwrap();
    let df = ParquetReader::new(f).finish().unwrap();
    let h = df.height();
    let col_str = |n: &str| -> Vec<String> {
        let c = df.column(n).unwrap().str().unwrap();
        (0..h).map(|i| c.get(i).unwrap().to_string()).collect()
    };
    let rid = col_str("rationale_id");
    let qid = col_str("question_id");
    let cc = df.column("correct").unwrap().bool().unwrap();
    let correct: Vec<bool> = (0..h).map(|i| cc.get(i).unwrap()).collect();
    let rc = df.column("rd").unwrap().f64().unwrap();
    let rd: Vec<f64> = (0..h).map(|i| rc.get(i).unwrap()).collect();
    let mut sel: Vec<BTreeSet<String>> = vec![BTreeSet::new(); rid.len()];
    for c in df.columns() {
        if let Some(label) = c.name().strip_prefix("selected: ") {
            let b = c.bool().unwrap();
            for (i, s) in sel.iter_mut().enumerate() {
                if b.get(i) == Some(true) {
                    s.insert(label.to_string());
                }
            }
        }
    }
    (0..rid.len())
        .map(|i| {
            (
                rid[i].clone(),
                qid[i].clone(),
                correct[i],
                rd[i],
                sel[i].clone(),
            )
        })
        .collect()
}

#[test]
fn report_html_rationale_browser_in_chromium() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let p = Project::new(&study_spec());
    let o = p.morsd(&["run", "experiments/tiny.toml", "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("seeds per setting"),
        "run prints what the numbers can show: {}",
        text(&o)
    );
    let dir = p.path().join("results/tiny");
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no external resource of any kind.
    for bad in [
        "src=\"http",
        "href=\"http",
        "<link",
        "@import",
        "url(",
        "src=\"//",
    ] {
        assert!(!html.contains(bad), "report.html references `{bad}`");
    }
    assert!(html.contains("<svg"), "the chart is inlined");

    // Runs and their strategies, from runs.json.
    let runs = p.runs_json("tiny");
    let strategy_of: BTreeMap<String, String> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["strategy"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(strategy_of.len(), 4);
    let sel = read_selection(&dir.join("selection.parquet"));
    let all: BTreeSet<String> = sel.iter().map(|s| s.0.clone()).collect();
    assert_eq!(
        all.len(),
        sel.len(),
        "rationale ids are unique in this study"
    );

    let profile = tempfile::tempdir().unwrap();
    // 1. Unfiltered: the run table and every rationale.
    let dom = dump_dom(&browser, profile.path(), &page, "");
    assert_eq!(tags(&dom, "<tr class=\"run\"").len(), 4, "run table rows");
    // The run table says where and why each run stopped and whether it converged ("–" when
    // runs.json does not say), in runs.json order.
    let table = element(&dom, "<table id=\"runs\"", "</table>");
    let head = cells(table, "th").concat();
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no `{name}` column in {head:?}"))
    };
    let (stopped, reason, converged) = (col("stopped at"), col("stop reason"), col("converged"));
    let body = cells(table, "td");
    let stored_runs = runs["runs"].as_array().unwrap();
    assert_eq!(body.len(), stored_runs.len());
    for (row, r) in body.iter().zip(stored_runs) {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".to_string());
        assert_eq!(
            row[stopped],
            or_dash(r["stopped_step"].as_u64().map(|s| s.to_string()))
        );
        assert_eq!(
            row[reason],
            or_dash(r["stop_reason"].as_str().map(String::from))
        );
        assert_eq!(
            row[converged],
            or_dash(
                r["converged"]
                    .as_bool()
                    .map(|c| if c { "yes" } else { "no" }.into())
            )
        );
    }
    assert!(
        body.iter()
            .all(|row| row[reason] == "budget" && row[stopped] == "8"),
        "train.steps = 8 without patience: every run trains its budget: {body:?}"
    );
    // Learning curves: the section, its caption, and one line per run in each panel.
    let curves = element(&dom, "<section id=\"curves\"", "</section>");
    assert!(curves.contains("<h2>Learning curves</h2>"), "{curves}");
    assert!(curves.contains("chosen checkpoint") && curves.contains("train.patience"));
    let svg = element(curves, "<svg", "</svg>");
    let with = |k: &str| {
        stored_runs
            .iter()
            .filter(|r| r[k].as_array().is_some_and(|c| !c.is_empty()))
            .count()
    };
    assert_eq!(with("val_curve"), 4, "morsd run records every run's curves");
    assert_eq!(with("loss_curve"), 4);
    assert_eq!(
        run_polylines(svg),
        with("val_curve") + with("loss_curve"),
        "one line per run in each panel"
    );
    let rows = rat_rows(&dom);
    assert_eq!(ids(&rows), all);
    assert_eq!(rows.len(), sel.len());
    assert_eq!(shown(&dom), sel.len());
    let default_rd = rds(&rows);
    assert!(
        default_rd.windows(2).any(|w| w[0] > w[1]),
        "the default (question) order is not already sorted by RD, so the sort below is a real check"
    );

    // 2. Strategy filter + RD sort: exactly the rationales some morsd run selected, by RD.
    for strategy in ["morsd", "random"] {
        let expect: BTreeSet<String> = sel
            .iter()
            .filter(|s| s.4.iter().any(|l| strategy_of[l] == strategy))
            .map(|s| s.0.clone())
            .collect();
        assert!(!expect.is_empty() && expect.len() < sel.len());
        let dom = dump_dom(
            &browser,
            profile.path(),
            &page,
            &format!("strategy={strategy}&sort=rd"),
        );
        let rows = rat_rows(&dom);
        assert_eq!(ids(&rows), expect, "strategy={strategy}");
        assert_eq!(rows.len(), expect.len());
        assert_eq!(shown(&dom), expect.len());
        for r in &rows {
            assert!(
                r["data-sel"]
                    .split('|')
                    .any(|l| strategy_of.get(l).is_some_and(|s| s == strategy)),
                "{r:?}"
            );
        }
        let v = rds(&rows);
        assert!(
            v.windows(2).all(|w| w[0] <= w[1]),
            "sorted by RD ascending: {v:?}"
        );
        // The DOM's RD is the parquet's RD for that rationale.
        let rd_of: BTreeMap<&str, f64> = sel.iter().map(|s| (s.0.as_str(), s.3)).collect();
        for (r, x) in rows.iter().zip(&v) {
            assert!((rd_of[r["data-id"].as_str()] - x).abs() < 1e-9);
        }
    }
    let dom = dump_dom(&browser, profile.path(), &page, "strategy=morsd&sort=-rd");
    let v = rds(&rat_rows(&dom));
    assert!(v.windows(2).all(|w| w[0] >= w[1]), "RD descending: {v:?}");

    // 3. Correctness, question and run filters.
    let dom = dump_dom(&browser, profile.path(), &page, "correct=no");
    let wrong: BTreeSet<String> = sel.iter().filter(|s| !s.2).map(|s| s.0.clone()).collect();
    assert!(!wrong.is_empty());
    assert_eq!(ids(&rat_rows(&dom)), wrong);
    let q = sel[5].1.clone();
    let dom = dump_dom(&browser, profile.path(), &page, &format!("q={q}"));
    let of_q: BTreeSet<String> = sel
        .iter()
        .filter(|s| s.1 == q)
        .map(|s| s.0.clone())
        .collect();
    let rows = rat_rows(&dom);
    assert_eq!(ids(&rows), of_q);
    assert!(rows.iter().all(|r| r["data-q"] == q));
    let label = strategy_of.keys().next().unwrap().clone();
    let dom = dump_dom(
        &browser,
        profile.path(),
        &page,
        &format!("run={}&source=programmatic", label.replace(' ', "%20")),
    );
    let of_run: BTreeSet<String> = sel
        .iter()
        .filter(|s| s.4.contains(&label))
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(ids(&rat_rows(&dom)), of_run);
    // Every rationale row shows its text beside a non-empty gold answer.
    assert_eq!(
        dom.matches("<td class=\"gold\">").count(),
        of_run.len(),
        "a gold cell per row"
    );
    assert!(!dom.contains("<td class=\"gold\"></td>"));

    // 4. A screenshot of the page.
    let shot = p.path().join("report.png");
    chromium(
        &browser,
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1400".to_string(),
        ],
        &format!("file://{}#strategy=morsd&sort=rd", page.display()),
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);

    // 5. `morsd report DIR` rebuilds the same page from the folder alone.
    std::fs::remove_dir_all(p.path().join("cache")).unwrap();
    std::fs::remove_file(&page).unwrap();
    let o = p.morsd(&["report", "results/tiny"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html);
}
