//! The demo brand's dashboard in real headless Chromium (Debian's `chromium`, which
//! `scripts/test.sh` installs): the demo's simulated brand (seed 42, scale 1, two years) runs the
//! whole pipeline (simulator → fake Klaviyo and Shopify over HTTP → sync → transform → report),
//! then Chromium loads both views, and the test asserts
//! - the page logs nothing to the console (and, so that check can fail, that a page with a
//!   broken script does);
//! - each view shows only its own section, and every chart of it has drawn marks with a
//!   non-empty box in the laid-out page (measured by a harness page that frames the dashboard);
//! - the figures a reader needs are there (currency, percentages, the as-of date), and the
//!   demo's operating record is read: a change with a verdict, one whose window is still open,
//!   and the queued hypotheses.
//!
//! Screenshots of both views are written to `target/dashboard-screenshots/` for a person to
//! look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BROWSER_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("chromium is not installed: scripts/test.sh installs Debian's chromium");
}

/// Runs Chromium on `url` with `extra` flags; returns (stdout, stderr).
fn browse(url: &str, extra: &[&str], profile: &Path) -> (String, String) {
    let out = Command::new(chromium())
        .args(BROWSER_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Console messages Chromium logged to stderr (`...:CONSOLE:<line>] "message", source: ...`).
/// The dashboard has no script, so any message at all means something failed to load or parse.
fn console_messages(url: &str, profile: &Path) -> Vec<String> {
    let (_, err) =
        browse(url, &["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom"], profile);
    err.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

/// A page that frames the dashboard at `fragment` and reports, per chart of the visible view,
/// how many marks have a non-empty laid-out box, and which view sections are displayed.
fn harness(dashboard: &Path, fragment: &str) -> String {
    format!(
        r#"<!doctype html><html><body><iframe id="f" width="1300" height="900" src="file://{src}#{fragment}"></iframe><pre id="out">pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const doc = document.getElementById('f').contentDocument;
  const shown = [...doc.querySelectorAll('section.view')]
    .filter(s => doc.defaultView.getComputedStyle(s).display !== 'none').map(s => s.id);
  const charts = [...doc.querySelectorAll('section.view')].filter(s => shown.includes(s.id))
    .flatMap(s => [...s.querySelectorAll('svg.chart')]).map(svg => {{
      const marks = [...svg.querySelectorAll('.mark')];
      const drawn = marks.filter(m => {{ const b = m.getBBox(); return b.width > 0 || b.height > 0; }});
      return svg.getAttribute('aria-label') + '=' + drawn.length + '/' + marks.length;
    }});
  document.getElementById('out').textContent = 'shown:' + shown.join(',') + '\n' + charts.join('\n');
}});
</script></body></html>"#,
        src = dashboard.display()
    )
}

/// The harness's report: the sections shown, and (chart, drawn marks, marks) per chart.
fn measure(dashboard: &Path, fragment: &str, work: &Path) -> (String, Vec<(String, usize, usize)>) {
    let page = work.join(format!("harness-{fragment}.html"));
    std::fs::write(&page, harness(dashboard, fragment)).unwrap();
    let (dom, _) = browse(
        &format!("file://{}", page.display()),
        &["--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom"],
        &work.join("profile"),
    );
    let text = dom.split("<pre id=\"out\">").nth(1).and_then(|s| s.split("</pre>").next()).unwrap_or("").to_string();
    let mut lines = text.lines();
    let shown = lines.next().unwrap_or("").trim_start_matches("shown:").to_string();
    let charts = lines
        .filter_map(|l| {
            let (name, counts) = l.rsplit_once('=')?;
            let (drawn, all) = counts.split_once('/')?;
            Some((name.to_string(), drawn.parse().ok()?, all.parse().ok()?))
        })
        .collect();
    (shown, charts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_dashboard_renders_in_chromium() {
    let cfg = lifecycle_etl::demo::sim_config(42, 1);
    let (_truth, storage, dir) = run_brand_with_record(&cfg, Some(lifecycle_etl::demo::DEMO_OPERATING_RECORD)).await;

    // The demo's operating record: a change read against its baseline, one too recent to read,
    // and three queued hypotheses, each matched to a flow the brand has.
    let readout = rows(
        &storage,
        "select intervention_id, verdict, did_rpe is not null from fct_intervention_readout order by changed_on",
    )
    .await;
    assert_eq!(readout.len(), 2, "{readout:?}");
    assert!(["improved", "worsened", "no_detectable_change"].contains(&readout[0][1].as_str()), "{readout:?}");
    assert_eq!(
        (readout[0][2].as_str(), readout[1][1].as_str(), readout[1][2].as_str()),
        ("true", "window_open", "false")
    );
    let queue =
        rows(&storage, "select queue_rank, flow_key is not null from fct_hypothesis_queue order by queue_rank").await;
    assert_eq!(queue, vec![vec!["1", "true"], vec!["2", "true"], vec!["3", "true"]]);
    let work = tempfile::tempdir().unwrap();

    // A readout month whose flow outcome windows have closed, and the default (latest) month
    // the nightly run wrote.
    let job = lifecycle_etl::config::Job::load(&dir.path().join("simbrand.toml")).unwrap();
    let path = work.path().join("dashboard.html");
    lifecycle_etl::report::write(&job, &storage, Some("2026-08"), Some(&path)).await.unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "self-contained");
    assert!(html.contains("Lifecycle Performance Dashboard · 2026-08") && html.contains("data as of <b>2026-10-"));
    assert!(html.contains('$') && html.contains(" %"), "money and percentages formatted for people");
    assert!(html.contains("Retention by acquisition cohort") && html.contains("RFM tier movement"));
    let interventions = html.split("Interventions and what they did").nth(1).expect("the interventions section");
    let verdict = readout[0][1].replace('_', " ");
    assert!(interventions.contains(&format!(">{verdict}</td>")), "the recorded change's verdict is shown");
    assert!(interventions.contains("Queued hypotheses") && interventions.contains("<td class=\"n\">3</td>"));
    assert!(!html.contains("window open"), "a change after the readout month is not listed");
    let latest = work.path().join("latest.html");
    lifecycle_etl::report::write(&job, &storage, None, Some(&latest)).await.unwrap();
    let latest = std::fs::read_to_string(&latest).unwrap();
    assert!(
        latest.contains("Lifecycle Performance Dashboard · 2026-10")
            && latest.contains("window open (readable from 2026-11-")
    );

    // Console errors are caught: a broken page logs one, the dashboard none.
    let broken = work.path().join("broken.html");
    std::fs::write(&broken, "<!doctype html><p>x</p><script>notAFunction();</script>").unwrap();
    let profile = work.path().join("profile");
    assert!(
        !console_messages(&format!("file://{}", broken.display()), &profile).is_empty(),
        "the console check can fail"
    );
    let errors = console_messages(&format!("file://{}", path.display()), &profile);
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Each view shows its own section and draws every chart.
    for (fragment, expect_charts) in [("crm", 5), ("cfo", 4)] {
        let (shown, charts) = measure(&path, fragment, work.path());
        println!("#{fragment}: shown {shown}; charts {charts:?}");
        assert_eq!(shown, fragment, "only the {fragment} view is displayed");
        assert_eq!(charts.len(), expect_charts, "{fragment} charts: {charts:?}");
        for (name, drawn, all) in &charts {
            assert!(*all > 0 && drawn == all, "{name}: {drawn} of {all} marks drawn");
        }
    }

    // Screenshots for a person to look at.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for fragment in ["crm", "cfo"] {
        let png = shots.join(format!("{fragment}.png"));
        let _ = std::fs::remove_file(&png);
        browse(
            &format!("file://{}#{fragment}", path.display()),
            &["--window-size=1300,6400", &format!("--screenshot={}", png.display())],
            &profile,
        );
        assert!(std::fs::metadata(&png).map(|m| m.len() > 10_000).unwrap_or(false), "screenshot {}", png.display());
    }
}
