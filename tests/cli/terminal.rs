//! Pipes and terminals: a pipe never gets a control character (no colour,
//! no progress bar, at any verbosity), a terminal gets colour and bars
//! unless `TERM=dumb` (or `NO_COLOR`) says otherwise, and tables use the
//! terminal's width.
//!
//! A terminal here is a pseudo-terminal, as a person's shell gives: the
//! plugin's stdin, stdout and stderr are its other end, it is the session's
//! controlling terminal, and what it printed is read back from the master
//! side. [`in_terminal`] is the helper other tests can use too.

use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use super::{Env, PLUGIN, Run, canary};

/// What a terminal showed while the plugin ran, `\r\n` read as `\n`.
pub struct Transcript {
    pub code: i32,
    pub text: String,
}

/// Run the plugin with `args` in a pseudo-terminal `columns` wide, typing
/// `input` once it started; returns the exit code and everything shown.
pub fn in_terminal(env: &Env, args: &[&str], columns: u16, input: &[u8]) -> Transcript {
    let mut terminal = Terminal::start(env, args, columns);
    if !input.is_empty() {
        terminal.type_keys(input);
    }
    terminal.finish()
}

/// The plugin running in a pseudo-terminal, for a test that types while
/// it runs (Ctrl-C is `\x03`, which the terminal turns into SIGINT).
pub struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    shown: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    /// Start the plugin with `args` in a terminal `columns` wide (50 rows).
    pub fn start(env: &Env, args: &[&str], columns: u16) -> Self {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave: OwnedFd = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("the terminal's other end");
        tcsetwinsize(
            &slave,
            Winsize {
                ws_row: 50,
                ws_col: columns,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("the terminal size");

        let mut command = env.command(PLUGIN, args);
        command
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        // SAFETY: between fork and exec only two system calls run (a new
        // session, then the terminal as its controlling terminal); neither
        // allocates or takes a lock.
        unsafe {
            command.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                Ok(())
            });
        }
        let child = command.spawn().expect("the plugin starts");
        // The parent's copies of the terminal's other end must close, or the
        // master never sees the end of the output.
        drop(command);

        let master = std::fs::File::from(master);
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let mut master = master.try_clone().expect("dup");
            let shown = shown.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match master.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => shown.lock().unwrap().extend_from_slice(&buffer[..n]),
                        // Linux answers EIO once the last slave is closed.
                        Err(_) => break,
                    }
                }
            })
        };
        Terminal {
            child,
            master,
            shown,
            reader,
        }
    }

    /// Type `keys` into the terminal.
    pub fn type_keys(&mut self, keys: &[u8]) {
        self.master
            .write_all(keys)
            .expect("typing into the terminal");
    }

    /// What the terminal showed so far, `\r\n` read as `\n`.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().unwrap()).replace("\r\n", "\n")
    }

    /// Wait until what was shown satisfies `done` (what is awaited is named
    /// in the failure; the bound only keeps a broken run from hanging).
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done(&self.shown()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the terminal never showed {what}:\n{}",
                self.shown()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Wait for the plugin to end; its exit code and everything shown.
    pub fn finish(mut self) -> Transcript {
        let status = self.child.wait().expect("the plugin ends");
        drop(self.master);
        self.reader.join().expect("the reader ends");
        let text = String::from_utf8_lossy(&self.shown.lock().unwrap()).replace("\r\n", "\n");
        Transcript {
            code: status.code().unwrap_or(-1),
            text,
        }
    }
}

pub fn terminal_env(sim: &mesh_sim::Sim, term: &str) -> Env {
    Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("TERM", term)
}

pub fn assert_no_escape(what: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains('\x1b'),
            "{what}: an escape byte on {stream} through a pipe:\n{text:?}"
        );
    }
}

#[test]
fn no_verb_writes_an_escape_byte_into_a_pipe_even_when_term_says_colour() {
    let sim = canary();
    let env = terminal_env(&sim, "xterm-256color");
    let runs: &[(&[&str], i32)] = &[
        (&["status", "-A"], 0),
        (&["status", "-A", "-o", "wide", "-v=2"], 0),
        (&["status", "-A", "-o", "json"], 0),
        (&["status", "-n", "no-such-namespace"], 1),
        (&["restart-sidecars", "-n", "pay", "--dry-run"], 0),
        (&["relabel", "-n", "shop", "--to", "1-22-3", "--dry-run"], 0),
        (&["relabel", "-n", "shop", "--to", "1-22-3"], 5),
        (&["relabel", "-n", "shop", "--to", "1-22-3", "--yes"], 0),
        (&["tag", "list", "-o", "wide"], 0),
        (
            &[
                "tag",
                "set",
                "prod-stable",
                "--revision",
                "1-22-3",
                "--restart",
                "--yes",
            ],
            0,
        ),
        (&["tag", "remove", "prod-canary"], 5),
        (&["restart-sidecars", "-n", "pay", "--yes", "-v"], 0),
        (
            &["restart-sidecars", "-n", "shop", "--yes", "-o", "yaml"],
            0,
        ),
        (
            &[
                "gateway-switch",
                "-n",
                "istio-gateways",
                "--to",
                "1-22-3",
                "--dry-run",
            ],
            0,
        ),
        (
            &[
                "gateway-switch",
                "-n",
                "istio-gateways",
                "--to",
                "1-22-3",
                "--yes",
            ],
            0,
        ),
        (
            &[
                "gateway-switch",
                "-n",
                "istio-gateways",
                "--rollback",
                "--yes",
            ],
            0,
        ),
        (&["relabel", "-n", "shop", "--undo", "--yes"], 0),
        (&["version"], 0),
        (&["completion", "zsh"], 0),
        (&["relabel", "--help"], 0),
        (&["restart-sidecars", "--no-such-flag"], 2),
    ];
    let mut outputs = Vec::new();
    for (args, code) in runs {
        let run = env.plugin(args);
        assert_eq!(run.code, *code, "{args:?}: {run:#?}");
        assert_no_escape(&format!("{args:?}"), &run);
        outputs.push(run);
    }
    // Through a pipe the free text of every verb's tables stays on its row
    // too (at a terminal it would wrap): gateway-switch's DETAIL.
    let switch_plan = runs
        .iter()
        .zip(&outputs)
        .find(|((args, _), _)| args.contains(&"gateway-switch") && args.contains(&"--dry-run"))
        .map(|(_, run)| &run.stdout)
        .expect("the gateway-switch rehearsal ran");
    assert!(
        switch_plan
            .lines()
            .any(|l| l.starts_with("previous-selector")
                && l.ends_with("is recorded in mesh-upgrade.io/previous-selector for --rollback")),
        "{switch_plan}"
    );
}

#[test]
fn at_a_terminal_status_is_coloured_and_restart_draws_progress_bars() {
    let sim = canary();
    let env = terminal_env(&sim, "xterm-256color");
    let status = in_terminal(&env, &["status", "-A"], 120, b"");
    assert_eq!(status.code, 0, "{}", status.text);
    assert!(
        status.text.contains("\x1b[1mWORKLOADS\x1b[0m"),
        "{:?}",
        status.text
    );

    let restart = in_terminal(&env, &["restart-sidecars", "-n", "pay", "--yes"], 120, b"");
    assert_eq!(restart.code, 0, "{}", restart.text);
    assert!(
        restart.text.contains("workloads done"),
        "no progress bar was drawn: {:?}",
        restart.text
    );
}

#[test]
fn term_dumb_at_a_terminal_gets_no_colour_and_no_progress_bar() {
    let sim = canary();
    let env = terminal_env(&sim, "dumb");
    let status = in_terminal(&env, &["status", "-A"], 120, b"");
    assert_eq!(status.code, 0, "{}", status.text);
    assert!(status.text.contains("WORKLOADS"), "{}", status.text);
    assert!(!status.text.contains('\x1b'), "{:?}", status.text);

    let restart = in_terminal(&env, &["restart-sidecars", "-n", "pay", "--yes"], 120, b"");
    assert_eq!(restart.code, 0, "{}", restart.text);
    assert!(!restart.text.contains('\x1b'), "{:?}", restart.text);
    assert!(!restart.text.contains("workloads done"), "{}", restart.text);
    assert!(
        restart
            .text
            .lines()
            .any(|l| l.starts_with("pay/deployment/payments: restarted")),
        "progress comes as plain lines instead:\n{}",
        restart.text
    );
}

#[test]
fn no_color_at_a_terminal_turns_colour_off() {
    let sim = canary();
    let env = terminal_env(&sim, "xterm-256color").var("NO_COLOR", "1");
    let status = in_terminal(&env, &["status", "-A"], 120, b"");
    assert_eq!(status.code, 0, "{}", status.text);
    assert!(!status.text.contains('\x1b'), "{:?}", status.text);
    let flag = in_terminal(
        &terminal_env(&sim, "xterm-256color"),
        &["status", "-A", "--no-color"],
        120,
        b"",
    );
    assert!(!flag.text.contains('\x1b'), "{:?}", flag.text);
}

#[test]
fn at_a_terminal_tables_fit_its_width_by_wrapping_free_text_only() {
    let sim = canary();
    let env = terminal_env(&sim, "dumb");
    let narrow = in_terminal(&env, &["status", "-A"], 100, b"");
    assert_eq!(narrow.code, 0, "{}", narrow.text);
    let piped = env.plugin(&["status", "-A"]);
    assert_eq!(piped.code, 0, "{piped:#?}");
    let longest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        longest(&piped.stdout) > 100,
        "the pipe's rows take the width they need:\n{}",
        piped.stdout
    );
    for name in [
        "deploy/istio-ingressgateway-1-21-2",
        "istio-gateways/istio-ingressgateway",
    ] {
        assert!(narrow.text.contains(name), "{name} split:\n{}", narrow.text);
    }
    assert!(
        narrow.text.lines().count() > piped.stdout.lines().count(),
        "free text wraps at 100 columns:\n{}",
        narrow.text
    );
}
