//! The README's walkthrough, run as written against a real 3-server Consul 1.8.7 cluster: the
//! commands are taken from README.md's "Walkthrough" section (its ```sh blocks, the
//! `$ rehearse lint …` example and the shape of its ```toml `[execute]` block) and run with `sh`
//! in a scratch directory, the rehearse under test first on PATH. Where the README speaks to a
//! Nomad cluster the test speaks to its Consul one (CONSUL_HTTP_ADDR instead of NOMAD_ADDR, its
//! own `[execute.command]` templates that stop and start the test's Consul processes, the
//! Consul version as the target); every word of each command line is the README's. A README
//! command that no longer parses (a flag renamed or removed) fails the test with the CLI's
//! usage error.

use super::cluster::{self, ConsulCluster, TOKEN};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The README's walkthrough section: from its heading to the next `## `.
fn walkthrough_section(readme: &str) -> &str {
    let start = readme
        .find("## Walkthrough")
        .expect("README.md has a \"## Walkthrough\" section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// Fenced blocks of a Markdown text: (info string, body).
fn fenced(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => open = Some((info.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// What the walkthrough asks the reader to run, in order.
#[derive(Debug)]
struct Walkthrough {
    /// The `export NAME=…` lines (names only).
    exports: Vec<String>,
    /// Each `rehearse …` command line of the ```sh blocks and the `$ rehearse …` examples,
    /// without trailing comments.
    commands: Vec<String>,
    /// The first output line under each `$ rehearse …` example.
    expected_first_line: Vec<(String, String)>,
    /// The ```toml block.
    execute_toml: String,
}

fn parse_walkthrough(readme: &str) -> Walkthrough {
    let mut w = Walkthrough {
        exports: Vec::new(),
        commands: Vec::new(),
        expected_first_line: Vec::new(),
        execute_toml: String::new(),
    };
    for (info, body) in fenced(walkthrough_section(readme)) {
        match info.as_str() {
            "sh" => {
                for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if let Some(e) = line.strip_prefix("export ") {
                        w.exports
                            .push(e.split('=').next().unwrap_or_default().to_string());
                    } else {
                        // `#` starts a comment only after a blank (as in sh).
                        let cmd = line.split(" #").next().unwrap_or(line).trim();
                        w.commands.push(cmd.to_string());
                    }
                }
            }
            "toml" => w.execute_toml = body,
            "" => {
                let mut lines = body.lines();
                while let Some(l) = lines.next() {
                    if let Some(cmd) = l.strip_prefix("$ ") {
                        w.commands.push(cmd.trim().to_string());
                        let first = lines.next().unwrap_or_default().trim().to_string();
                        w.expected_first_line.push((cmd.trim().to_string(), first));
                    }
                }
            }
            other => panic!("README walkthrough: unexpected ```{other} block"),
        }
    }
    w
}

/// A command's exit code and output.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Whether rehearse refused the command line itself (clap's usage error: exit 2 and a usage
/// line), as a README command that drifted from the CLI is refused.
fn usage_error(r: &Ran) -> bool {
    r.code == Some(2)
        && (r.stderr.contains("\nUsage: ")
            || r.stderr.contains("unexpected argument")
            || r.stderr.contains("unrecognized subcommand"))
}

/// Runs one README line with `sh -c` in `dir` (≤ `max_s`, killed at the bound).
fn sh(line: &str, dir: &Path, env: &[(&str, String)], max_s: u64) -> Ran {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rehearse"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(dir).env("PATH", path);
    for v in [
        "NOMAD_ADDR",
        "NOMAD_TOKEN",
        "NOMAD_CACERT",
        "CONSUL_HTTP_ADDR",
        "CONSUL_HTTP_TOKEN",
        "CONSUL_CACERT",
        "CONSUL_CLIENT_CERT",
        "CONSUL_CLIENT_KEY",
        "CONSUL_TLS_SERVER_NAME",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out_path = dir.join(".out");
    let err_path = dir.join(".err");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("run sh");
    let code = cluster::wait_bounded(&mut child, max_s);
    Ran {
        code,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Runs a README line and requires exit code `want`; a usage error names the README.
fn run_readme(line: &str, dir: &Path, env: &[(&str, String)], want: i32, max_s: u64) -> Ran {
    let t0 = Instant::now();
    let r = sh(line, dir, env, max_s);
    println!(
        "$ {line}    [exit {:?}, {:.1}s]\n{}",
        r.code,
        t0.elapsed().as_secs_f64(),
        r.text()
    );
    assert!(
        !usage_error(&r),
        "README.md's walkthrough command no longer parses: `{line}`\n{}",
        r.stderr
    );
    assert_eq!(r.code, Some(want), "`{line}`:\n{}", r.text());
    r
}

/// The README's commands with the subcommand `sub`.
fn with_sub<'a>(w: &'a Walkthrough, sub: &str) -> Vec<&'a str> {
    w.commands
        .iter()
        .filter(|c| c.split_whitespace().nth(1) == Some(sub))
        .map(String::as_str)
        .collect()
}

/// The walkthrough's `[execute]` block with the test's own templates: same tables and keys,
/// each command acting on the test's local Consul processes (`dir/{name}/pid`, as the
/// cluster's own process control keeps them), the binaries the cluster's old and new install.
fn local_execute(readme_toml: &str, dir: &Path, consul_root: &Path, base: u8) -> String {
    let shape: toml::Table = toml::from_str(readme_toml).expect("the README's toml block parses");
    let d = dir.display();
    let joins: Vec<String> = (0..3)
        .map(|i| format!("-retry-join=127.0.0.{}", base + i))
        .collect();
    let pid = format!("{d}/{{name}}/pid");
    let text = format!(
        r#"[execute]
control = "command"
[execute.command]
stop = "kill -INT $(cat {pid})"
start = "cd {d}/{{name}} && nohup {{binary}} agent -server -bootstrap-expect=3 -node={{name}} -bind={{host}} -client={{host}} -data-dir={d}/{{name}}/data -config-file={d}/acl.json {joins} -log-level=info >>{d}/{{name}}/consul.log 2>&1 </dev/null & echo $! >{pid}"
status = "p=$(cat {pid}) && test -d /proc/$p && ! grep -q '^State:.*Z' /proc/$p/status"
install = "ln -sf {{binary}} {d}/{{name}}/installed-consul"
[execute.current]
binary = "{old}"
[execute.target]
binary = "{new}"
"#,
        joins = joins.join(" "),
        old = consul_root.join("rehearse-old/consul").display(),
        new = consul_root.join("rehearse-new/consul").display(),
    );
    let ours: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        keys(&shape),
        keys(&ours),
        "the test's [execute] has the README's shape"
    );
    text
}

/// Every key path of a table (`execute.command.stop`, …).
fn keys(t: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in t {
        match v {
            toml::Value::Table(inner) => {
                out.extend(keys(inner).into_iter().map(|s| format!("{k}.{s}")));
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn the_readme_walkthrough_runs_as_written_on_a_real_cluster() {
    let t0 = Instant::now();
    let w = parse_walkthrough(&readme());
    assert_eq!(
        w.exports,
        ["NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_CACERT"],
        "the walkthrough points rehearse at the cluster as the nomad CLI is"
    );
    let subs: Vec<&str> = w
        .commands
        .iter()
        .map(|c| c.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        subs,
        [
            "import", "lint", "check", "explore", "report", "execute", "execute", "report"
        ],
        "the walkthrough's steps: {:?}",
        w.commands
    );
    assert!(w.commands.iter().all(|c| c.starts_with("rehearse ")));

    let base = 192;
    let c = ConsulCluster::start("walkthrough", base, 3);
    let dir = c.journal().parent().unwrap().to_path_buf();
    let consul_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/consul");
    let work = dir.join("walk");
    std::fs::create_dir_all(&work).unwrap();
    // CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN in place of NOMAD_ADDR and NOMAD_TOKEN (no TLS:
    // no CA file).
    let env = [
        ("CONSUL_HTTP_ADDR", format!("http://127.0.0.{base}:8500")),
        ("CONSUL_HTTP_TOKEN", TOKEN.to_string()),
    ];
    let started = Instant::now();

    // 1. Import.
    let import = with_sub(&w, "import")[0];
    run_readme(import, &work, &env, 0, 30);
    let plan_path = work.join("upgrade.toml");
    let imported = std::fs::read_to_string(&plan_path).expect("import wrote upgrade.toml");

    // 2. Say what to do: the target (Consul's own version here: the test's new install is the
    // same release) and the `[execute]` section of the README's shape.
    let mut plan = String::new();
    let mut targets = 0;
    for line in imported.lines() {
        if line.trim_start().starts_with("target = ") {
            plan.push_str("target = \"1.8.7\"\n");
            targets += 1;
        } else {
            plan.push_str(line);
            plan.push('\n');
        }
    }
    assert_eq!(targets, 1, "import writes one target line:\n{imported}");
    plan.push('\n');
    plan.push_str(&local_execute(&w.execute_toml, &dir, &consul_root, base));
    std::fs::write(&plan_path, &plan).unwrap();

    // 3. Lint: warnings only (exit 0), the README's example finding among them.
    let lint = with_sub(&w, "lint")[0];
    let r = run_readme(lint, &work, &env, 0, 30);
    let (_, first) = &w.expected_first_line[0];
    let rule = first.split(' ').next().unwrap_or_default();
    assert!(
        rule.starts_with("warning[R") && r.stdout.contains(rule),
        "the README shows {rule}: {}",
        r.text()
    );

    // 4. Rehearse it, and 5. the risk report: as written (a few seconds each on 3 servers).
    run_readme(with_sub(&w, "check")[0], &work, &env, 0, 60);
    run_readme(with_sub(&w, "explore")[0], &work, &env, 0, 60);
    let reports = with_sub(&w, "report");
    run_readme(reports[0], &work, &env, 0, 60);
    assert!(work.join("report/report.html").exists());
    let sim_s = started.elapsed().as_secs_f64();

    // 6. Dry run: nothing changed, no journal.
    let execs = with_sub(&w, "execute");
    let dry = run_readme(execs[0], &work, &env, 0, 60);
    assert!(dry.text().contains("preflight: ok"), "{}", dry.text());
    let journal = work.join("upgrade.toml.journal.jsonl");
    assert!(!journal.exists(), "the dry run journals nothing");

    // 7. Apply, then the live report from its journal.
    let applied = Instant::now();
    let apply = run_readme(execs[1], &work, &env, 0, 180);
    let apply_s = applied.elapsed().as_secs_f64();
    assert!(journal.exists());
    // While a gate waits it says what for, every 5 s on stderr, from the procedure's reasons.
    let gate_lines: Vec<&str> = apply
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("gate for s"))
        .collect();
    assert!(
        !gate_lines.is_empty(),
        "no gate progress:\n{}",
        apply.text()
    );
    for l in &gate_lines {
        assert!(
            l.contains("s of at most ") && l.contains(": "),
            "gate line shape: {l}"
        );
    }
    let records = rehearse::live::journal::Journal::read(&journal).unwrap();
    assert!(
        matches!(
            &records[0],
            rehearse::live::journal::Record::Begin {
                control: Some(rehearse::plan::ControlKind::Command),
                ..
            }
        ),
        "the journal names the control kind: {:?}",
        records[0]
    );
    assert_eq!(
        super::actions(&records)
            .iter()
            .filter(|a| a.0 == "stop")
            .count(),
        3
    );
    run_readme(reports[1], &work, &env, 0, 60);
    assert!(work.join("live-report/report.html").exists());
    println!(
        "measured: walkthrough {:.1}s (import..report {sim_s:.1}s, execute --apply {apply_s:.1}s), {} gate lines",
        t0.elapsed().as_secs_f64(),
        gate_lines.len()
    );
}

#[test]
fn a_readme_command_with_a_renamed_flag_is_caught() {
    // The walkthrough's check above refuses a command line the CLI does not parse: a README
    // line with a renamed flag fails it.
    let w = parse_walkthrough(&readme());
    let report = with_sub(&w, "report")[0];
    assert!(report.contains(" -o "), "{report}");
    let dir = super::cluster::scratch("walkthrough-drift");
    let drifted = report.replace(" -o ", " --output-dir ");
    let r = sh(&drifted, &dir, &[], 30);
    assert!(usage_error(&r), "{drifted}: {}", r.text());
    let caught = std::panic::catch_unwind(|| run_readme(&drifted, &dir, &[], 0, 30));
    assert!(caught.is_err(), "a drifted README line passes");
    // The README's own line parses (it fails for its missing plan file, not for its flags).
    let r = sh(report, &dir, &[], 30);
    assert!(!usage_error(&r), "{report}: {}", r.text());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every command line the README gives to run: the lines of its ```sh blocks, its
/// `$ rehearse …` examples and the figures' commands (the last column of a table row), with
/// `rehearse` first; synopses with placeholders (`…`, `|`, `PLAN`) are not command lines.
fn readme_command_lines(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (info, body) in fenced(readme) {
        for line in body.lines().map(str::trim) {
            let line = match info.as_str() {
                "sh" => line,
                "" => match line.strip_prefix("$ ") {
                    Some(l) => l,
                    None => continue,
                },
                _ => continue,
            };
            // The README's main command runs the binary through cargo.
            let line = match line.strip_prefix("cargo run --release -- ") {
                Some(rest) => format!("rehearse {rest}"),
                None => line.to_string(),
            };
            // Without its trailing comment and output redirection.
            let line = line.split(" #").next().unwrap_or(&line);
            let line = line.split(" > ").next().unwrap_or(line).trim();
            if line.starts_with("rehearse ") {
                out.push(line.to_string());
            }
        }
    }
    for row in readme.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        if let Some(cmd) = cells
            .last()
            .and_then(|c| c.trim().strip_prefix("`rehearse "))
            .and_then(|c| c.strip_suffix('`'))
        {
            out.push(format!("rehearse {cmd}"));
        }
    }
    out.retain(|l| !l.contains('…') && !l.contains('|'));
    out
}

#[test]
fn every_rehearse_command_line_in_the_readme_parses() {
    // Each line runs with the real binary, its plan files replaced by a missing one (and `~`
    // by a scratch directory) so that nothing long runs: it must fail on the missing file (or
    // succeed), never on its flags.
    let lines = readme_command_lines(&readme());
    assert!(lines.len() >= 14, "{lines:?}");
    let dir = super::cluster::scratch("readme-lines");
    for line in &lines {
        let args: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|a| {
                if a.ends_with(".toml") || a.ends_with(".jsonl") {
                    "/nonexistent/rehearse-readme/plan.toml".to_string()
                } else {
                    a.replace('~', &dir.display().to_string())
                }
            })
            .collect();
        let o = Command::new(env!("CARGO_BIN_EXE_rehearse"))
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            // `import` reads the cluster's address from the environment: one that refuses.
            .env("NOMAD_ADDR", "http://127.0.0.195:1")
            .env_remove("CONSUL_HTTP_ADDR")
            .output()
            .expect("run rehearse");
        println!("{line}: exit {:?}", o.status.code());
        let r = Ran {
            code: o.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&o.stderr).to_string(),
        };
        assert!(
            !usage_error(&r),
            "README.md's `{line}` no longer parses:\n{}",
            r.stderr
        );
        assert!(
            matches!(r.code, Some(0 | 2)),
            "`{line}` (as {args:?}): exit {:?}\n{}",
            r.code,
            r.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
