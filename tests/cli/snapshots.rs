//! Every verb's text, in process: the library's `run_with` against a
//! mesh-sim started in this process, printing through an output object that
//! captures stdout and stderr with colour off at a fixed width of 100
//! columns, compared with the text a person would see. No subprocess, so a
//! change to any renderer shows here as a diff of whole screens.
//!
//! What varies from run to run is masked: timestamps read `<time>`, elapsed
//! seconds `<secs>`, a patch's resourceVersion `<rv>`; progress lines, whose
//! number depends on how many changes a watch sees, are checked line by line.
//! The screens are pinned as whole constants at the end of the file.

use clap::Parser;
use kubectl_mesh_upgrade::cli::Cli;
use kubectl_mesh_upgrade::output::{Format, Output};
use mesh_sim::{Sim, SimOptions};

use super::canary;

/// What one in-process run printed.
#[derive(Debug)]
struct Screen {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `args` against `sim` in process, as `kubectl mesh-upgrade` would,
/// the final error line included; `answer` is what a person types at a
/// prompt (`None`: stdin is not a terminal).
fn run_in_process(sim: &Sim, args: &[&str], answer: Option<bool>) -> Screen {
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let argv = ["kubectl-mesh_upgrade", "--kubeconfig", &kubeconfig]
        .into_iter()
        .chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).expect("the arguments parse");
    let (output, captured) = Output::capture(Format::from(cli.global.output), Some(100));
    let output = match answer {
        Some(answer) => output.answering(answer),
        None => output,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let result = runtime.block_on(kubectl_mesh_upgrade::run_with(&cli, &output));
    runtime.shutdown_background();
    let code = match result {
        Ok(code) => i32::from(code.code()),
        Err(err) => {
            output.error(&err);
            i32::from(kubectl_mesh_upgrade::error::exit_code_of(&err).code())
        }
    };
    Screen {
        code,
        stdout: mask_clock(&captured.stdout()),
        stderr: mask_clock(&captured.stderr()),
    }
}

/// `2026-11-23T14:54:28Z` → `<time>`, `12.3s` → `<secs>`, and the
/// `resourceVersion` a patch carries → `<rv>` (how far the simulated
/// controllers got before the read).
fn mask_clock(text: &str) -> String {
    let text = &mask_resource_versions(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some(len) = timestamp_at(&chars[i..]) {
            out.push_str("<time>");
            i += len;
        } else if let Some(len) = seconds_at(&chars[i..])
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.'))
        {
            out.push_str("<secs>");
            i += len;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn mask_resource_versions(text: &str) -> String {
    const KEY: &str = "\"resourceVersion\":\"";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = rest[at + KEY.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("<rv>");
    }
    out.push_str(rest);
    out
}

fn timestamp_at(chars: &[char]) -> Option<usize> {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:ddZ";
    let matches = SHAPE.len() <= chars.len()
        && SHAPE.chars().zip(chars).all(|(shape, c)| match shape {
            'd' => c.is_ascii_digit(),
            other => *c == other,
        });
    matches.then_some(SHAPE.len())
}

fn seconds_at(chars: &[char]) -> Option<usize> {
    let whole = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    if whole == 0 || chars.get(whole) != Some(&'.') {
        return None;
    }
    let fraction = chars[whole + 1..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = whole + 1 + fraction;
    (fraction > 0 && chars.get(end) == Some(&'s')).then_some(end + 1)
}

#[test]
fn the_clock_mask_replaces_timestamps_and_seconds_only() {
    assert_eq!(
        mask_clock(
            "at 2026-11-23T14:54:28Z in 12.3s (0.5s), v1.22.3s, {\"resourceVersion\":\"472\"}"
        ),
        "at <time> in <secs> (<secs>), v1.22.3s, {\"resourceVersion\":\"<rv>\"}"
    );
}

#[test]
fn status_reads_as_pinned() {
    let sim = canary();
    let screen = run_in_process(&sim, &["status", "-A"], None);
    assert_eq!(screen.code, 0, "{screen:#?}");
    assert_eq!(screen.stderr, "");
    assert_eq!(screen.stdout, STATUS, "{}", screen.stdout);
}

#[test]
fn restart_sidecars_plan_and_report_read_as_pinned() {
    let sim = canary();
    let dry = run_in_process(&sim, &["restart-sidecars", "-n", "pay", "--dry-run"], None);
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert_eq!(dry.stdout, RESTART_PLAN, "{}", dry.stdout);
    assert_eq!(
        dry.stderr,
        "Dry run: nothing was changed. Run again without --dry-run to restart them.\n"
    );

    let run = run_in_process(&sim, &["restart-sidecars", "-n", "pay", "--yes"], None);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!("{RESTART_PLAN}{RESTART_REPORT}"),
        "{}",
        run.stdout
    );
    // Progress without a terminal: one line per change of the rollout (how
    // many the watch sees varies), from the patch to the verdict.
    let progress: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        progress.first().copied(),
        Some("pay/deployment/payments: patching"),
        "{}",
        run.stderr
    );
    assert!(
        progress
            .iter()
            .all(|l| l.starts_with("pay/deployment/payments: ")),
        "{}",
        run.stderr
    );
    assert_eq!(
        progress.last().copied(),
        Some("pay/deployment/payments: restarted in <secs>")
    );
}

#[test]
fn relabel_plan_refusal_and_report_read_as_pinned() {
    let sim = canary();
    let refused = run_in_process(
        &sim,
        &["relabel", "-n", "shop", "--to", "1-22-3"],
        Some(false),
    );
    assert_eq!(refused.code, 5, "{refused:#?}");
    assert_eq!(refused.stdout, RELABEL_PLAN, "{}", refused.stdout);
    assert_eq!(
        refused.stderr,
        "Relabel 1 namespace to 1-22-3? [y/N] n\nerror: not confirmed: nothing was changed\n"
    );

    let run = run_in_process(
        &sim,
        &["relabel", "-n", "shop", "--to", "1-22-3", "--yes"],
        None,
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!("{RELABEL_PLAN}{RELABEL_REPORT}"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn gateway_switch_plan_and_result_read_as_pinned() {
    let sim = canary();
    let run = run_in_process(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "istio-gateways",
            "--to",
            "1-22-3",
            "--yes",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.stdout,
        format!("{GATEWAY_PLAN}{GATEWAY_RESULT}"),
        "{}",
        run.stdout
    );
    // Progress: what the switch did (a sentence, wrapped at the terminal's
    // 100 columns), then the endpoints each time they change until they
    // converge (how many changes the watch sees varies).
    let progress: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        progress[..3],
        [
            "Patched Service istio-gateways/istio-ingressgateway: selector now",
            "istio=ingressgateway,version=1-22-3; waiting up to 2m for its EndpointSlices to list only Ready pods",
            "matching it"
        ],
        "{}",
        run.stderr
    );
    assert!(
        progress[3..]
            .iter()
            .all(|l| l.starts_with("  endpoints: ") || l.starts_with("    ")),
        "{}",
        run.stderr
    );
    assert_eq!(progress.last().copied(), Some("  endpoints: 2 Ready"));
}

#[test]
fn errors_are_one_line_on_stderr() {
    let empty = Sim::start(SimOptions::default()).expect("an empty cluster starts");
    let missing = run_in_process(&empty, &["status", "-n", "shopp"], None);
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert_eq!(missing.stdout, "");
    assert_eq!(
        missing.stderr,
        "error: namespace \"shopp\" does not exist in context mesh-sim\n"
    );
    let sim = canary();
    let unknown = run_in_process(&sim, &["relabel", "-n", "shop", "--to", "1-99-0"], None);
    assert_eq!(unknown.code, 5, "{unknown:#?}");
    assert_eq!(unknown.stdout, "");
    assert_eq!(unknown.stderr, UNKNOWN_TARGET, "{}", unknown.stderr);
}

/// `status -A` on the canary scenario.
const STATUS: &str = r#"CONTROL PLANE
REVISION  ISTIOD         VERSION  READY  TAGS                 DEFAULT
1-21-2    istiod-1-21-2  1.21.2   1/1    default,prod-stable  yes
1-22-3    istiod-1-22-3  1.22.3   1/1    prod-canary

REVISION USAGE
REVISION  IN USE  USED BY
1-21-2    yes     3 namespaces (cart, legacy, shop), 2 tags (default, prod-stable), 9 workloads,
                  2 gateways
1-22-3    yes     4 namespaces (batch, legacy, pay, search), 1 tag (prod-canary), 2 workloads,
                  1 gateway, 1 pod

NAMESPACES
NAMESPACE     INJECTION        REVISION                  WORKLOADS  PROBLEMS
ambient-apps  ambient          -                         1
batch         rev:prod-canary  1-22-3 (tag prod-canary)  0
cart          rev:prod-stable  1-21-2 (tag prod-stable)  2
legacy        enabled          1-21-2 (tag default)      1          istio-injection=enabled and
                                                                    istio.io/rev=1-22-3 are both
                                                                    set; istio-injection wins
                                                                    (IST0123), so pods get 1-21-2
pay           rev:1-22-3       1-22-3                    2
search        rev:1-22-3       1-22-3                    2
shop          enabled          1-21-2 (tag default)      5
typo          rev:1-22-4       -                         1          1-22-4 names no revision or tag:
                                                                    new pods start without a proxy
(8 namespaces without injection labels not shown; -o wide lists them)

WORKLOADS
NAMESPACE       WORKLOAD                            STATE         PROXIES    EXPECTED  READY  RISKS
pay             sts/ledger                          stale         1.21.2 ×2  1-22-3    2/2    OnDelete
pay             deploy/payments                     stale         1.21.2 ×2  1-22-3    2/2
typo            deploy/notifications                not-injected  none ×2    none      2/2
cart            deploy/cart                         up-to-date    1.21.2 ×2  1-21-2    2/2
istio-gateways  deploy/istio-ingressgateway-1-21-2  up-to-date    1.21.2 ×2  1-21-2    2/2
istio-gateways  deploy/istio-ingressgateway-1-22-3  up-to-date    1.22.3 ×2  1-22-3    2/2
legacy          deploy/inventory                    up-to-date    1.21.2 ×2  1-21-2    2/2    PDB
                                                                                              allows 0
search          deploy/indexer                      up-to-date    1.22.3 ×2  1-22-3    2/2
search          deploy/search-api                   up-to-date    1.22.3 ×2  1-22-3    2/2
shop            deploy/catalog                      up-to-date    1.21.2 ×2  1-21-2    2/2
shop            deploy/frontend                     up-to-date    1.21.2 ×2  1-21-2    2/2
shop            ds/log-agent                        up-to-date    1.21.2 ×3  1-21-2    3/3
shop            deploy/recommendations              up-to-date    1.21.2 ×1  1-21-2    1/1    1
                                                                                              replica,
                                                                                              no PDB
cart            deploy/pricing                      custom-image  1.21.2 ×2  1-21-2    2/2
shop            deploy/metrics-exporter             opted-out     none ×1    none      1/1
(2 workloads outside the sidecar mesh (ambient, no-mesh) not shown; -o wide lists them)

PODS NO RESTART CAN REACH
NAMESPACE  POD          OWNER  STATE       PROXY          REMEDY
batch      debug-shell  none   up-to-date  1-22-3/1.22.3  nothing recreates it
                                                          kubectl delete pod debug-shell -n batch,
                                                          then create it again from its original
                                                          manifest

GATEWAYS
NAMESPACE       GATEWAY                      PROXY          READY  STATE       SERVICES
istio-gateways  istio-ingressgateway-1-21-2  1-21-2/1.21.2  2/2    up-to-date  istio-ingressgateway
istio-gateways  istio-ingressgateway-1-22-3  1-22-3/1.22.3  2/2    up-to-date  -

SERVICE                              TYPE          SELECTS           ENDPOINTS  CAN SWITCH TO
istio-gateways/istio-ingressgateway  LoadBalancer  1-21-2            2 ready:   1-22-3 (ready)
                                                   (version=1-21-2)  1-21-2 ×2

GATEWAY API GATEWAYS
NAMESPACE  GATEWAY  CLASS  REVISION              READY  PROXIES    RENDERS  PROGRAMMED  STATE       PROBLEMS
edge       public   istio  1-21-2 (prod-stable)  1/1    1.21.2 ×1  1.21.2   True        up-to-date  -

WAYPOINTS
NAMESPACE     WAYPOINT  REVISION          READY  PROXIES    RENDERS  PROGRAMMED  STATE       USED BY
ambient-apps  waypoint  1-21-2 (default)  1/1    1.21.2 ×1  1.21.2   True        up-to-date  namespace
                                                                                             ambient-apps; 1
                                                                                             service:
                                                                                             ambient-apps/reviews

SUMMARY
17 workloads: 10 up-to-date, 2 stale, 1 not-injected, 1 custom-image, 1 opted-out, 1 ambient, 1
no-mesh; 1 pod no restart can reach
Next:
  - 2 workloads in 1 namespace run 1.21.2 proxies but select 1-22-3
    kubectl mesh-upgrade restart-sidecars -n pay
  - 1 StatefulSet uses updateStrategy OnDelete (ledger): pods are deleted one at a time
    kubectl mesh-upgrade restart-sidecars -n pay --delete-pods
  - namespace legacy: istio-injection=enabled and istio.io/rev=1-22-3 are both set; istio-injection
    wins (IST0123), so pods get 1-21-2
    kubectl mesh-upgrade relabel -n legacy --to 1-21-2
  - namespace typo: 1-22-4 names no revision or tag: new pods start without a proxy; revisions and
    tags that exist: 1-21-2, 1-22-3, default, prod-canary, prod-stable
    kubectl mesh-upgrade relabel -n typo --to <revision>
  - gateway Service istio-gateways/istio-ingressgateway selects 1-21-2; the 1-22-3 gateway
    (istio-ingressgateway-1-22-3) is ready to take over
    kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --to 1-22-3
  - waypoint ambient-apps/waypoint runs revision 1-21-2; 1-22-3 is newer and Ready: move it when the
    canary looks good
    kubectl mesh-upgrade gateway-switch -n ambient-apps --gateway waypoint --to 1-22-3
  - Gateway edge/public runs revision 1-21-2; 1-22-3 is newer and Ready: move it when the canary
    looks good
    kubectl mesh-upgrade gateway-switch -n edge --gateway public --to 1-22-3
"#;
const RESTART_PLAN: &str = r#"1 workload to restart (annotation kubectl.kubernetes.io/restartedAt=<time>):
NAMESPACE  WORKLOAD             REPLICAS  PROXY NOW        AFTER            RISK
pay        deployment/payments  2         1.21.2 (1-21-2)  1.22.3 (1-22-3)  -

Skipped:
  pay/statefulset/ledger: updateStrategy OnDelete: a template patch restarts nothing; run again with
    --delete-pods to delete its pods one at a time, highest ordinal first
"#;
const RESTART_REPORT: &str = r#"NAMESPACE  WORKLOAD             RESULT     DETAIL
pay        deployment/payments  restarted  <secs>
Summary: 1 restarted and verified, 1 skipped.
"#;
const RELABEL_PLAN: &str = r#"Relabel 1 namespace to revision 1-22-3 (proxy 1.22.3):

NAMESPACE  LABELS NOW               NEW PODS GET  LABELS AFTER         NEW PODS GET
shop       istio-injection=enabled  1-21-2        istio.io/rev=1-22-3  1-22-3

Before a namespace's first relabel, its injection labels are recorded in its annotation
mesh-upgrade.io/previous-injection-labels; this undoes it:
  kubectl mesh-upgrade relabel -n shop --undo
Labels change only what new pods get: running pods keep their current proxy until they are
restarted, and `kubectl mesh-upgrade status` shows them as stale until then.
"#;
const RELABEL_REPORT: &str = r#"
Relabelled 1 namespace to 1-22-3:
  shop  istio.io/rev=1-22-3
Running pods keep their current proxy until they are restarted; until then
`kubectl mesh-upgrade status -n shop` shows them as stale. Next:
  kubectl mesh-upgrade restart-sidecars -n shop
"#;
const GATEWAY_PLAN: &str = r#"Service istio-gateways/istio-ingressgateway (LoadBalancer)
  selector now  istio=ingressgateway,version=1-21-2  (revision 1-21-2)
  switch to     istio=ingressgateway,version=1-22-3  (revision 1-22-3: istio-ingressgateway-1-22-3,
                2 of 2 pods Ready)

PRECHECK            RESULT  DETAIL
selector-key        ok      version picks the revision (now 1-21-2)
previous-selector   ok      istio=ingressgateway,version=1-21-2 is recorded in
                            mesh-upgrade.io/previous-selector for --rollback
endpoints-readable  ok      EndpointSlices can be read to verify the switch
pods-exist          ok      2 pods match istio=ingressgateway,version=1-22-3
                            (istio-ingressgateway-1-22-3)
pods-ready          ok      all 2 pods Ready
rolled-out          ok      rolled out: istio-ingressgateway-1-22-3 (2/2 Ready)
proxy-revision      ok      all 2 pods run revision 1-22-3's proxy (1.22.3)
istiod-ready        ok      istiod-1-22-3 Ready (1/1)
target-ports        ok      every target port exposed (15021, 8080, 8443, 31400, 15443)

PATCH service/istio-ingressgateway (application/merge-patch+json)
  {"metadata":{"annotations":{"mesh-upgrade.io/previous-selector":"{\"istio\":\"ingressgateway\",\"version\":\"1-21-2\"}","mesh-upgrade.io/switched-at":"<time>"},"resourceVersion":"<rv>"},"spec":{"selector":{"version":"1-22-3"}}}

After the patch, waits up to 2m for the EndpointSlices of istio-ingressgateway to list only Ready
pods matching istio=ingressgateway,version=1-22-3; if they do not, switches back and verifies that.

"#;
const GATEWAY_RESULT: &str = r#"Switched Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-22-3: its EndpointSlices list the 2 Ready pods of istio-ingressgateway-1-22-3 and no other pod.
Roll back with: kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --rollback
"#;
const UNKNOWN_TARGET: &str = r#"error: --to 1-99-0: no such revision or tag (revisions: 1-21-2 (1.21.2), 1-22-3 (1.22.3); tags: default -> 1-21-2, prod-canary -> 1-22-3, prod-stable -> 1-21-2; or default-injection for istio-injection=enabled)
"#;

/// The README's excerpt of the tour (`What the tour prints ...`): each
/// `$ kubectl mesh-upgrade ...` with the lines it shows, `...` where lines
/// were left out.
fn readme_tour_excerpt() -> Vec<(Vec<String>, Vec<String>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README");
    let after = readme
        .split_once("What the tour prints for these steps")
        .expect("the README quotes the tour")
        .1;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("a text block")
        .0;
    let mut steps: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ kubectl mesh-upgrade ") {
            let args = command.split_whitespace().map(str::to_string).collect();
            steps.push((args, Vec::new()));
        } else if let Some((_, lines)) = steps.last_mut() {
            lines.push(line.to_string());
        }
    }
    assert!(!steps.is_empty(), "no command in the README's tour excerpt");
    steps
}

/// Issue 14: the README's tour output is the tables as they are now. Each
/// step of the excerpt is run as the tour runs it (in order, on one canary
/// cluster, at 100 columns); every line the README shows must be a line of
/// its output, in the README's order, apart from the clock (masked in both).
#[test]
fn the_readmes_tour_excerpt_is_what_the_tour_prints_at_a_hundred_columns() {
    let sim = canary();
    for (args, shown) in readme_tour_excerpt() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let screen = run_in_process(&sim, &args, None);
        assert_eq!(screen.code, 0, "{args:?}: {screen:#?}");
        let printed: Vec<String> = format!("{}{}", screen.stdout, screen.stderr)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let mut at = 0;
        for line in shown.iter().map(|l| mask_clock(l.trim_end())) {
            if line == "..." || line.is_empty() {
                continue;
            }
            match printed[at..].iter().position(|p| *p == line) {
                Some(found) => at += found + 1,
                None => panic!(
                    "the README shows for {args:?} the line\n{line}\nwhich the plugin (after the line before it) does not print:\n{}",
                    printed.join("\n")
                ),
            }
        }
    }
}
