//! The built binary serving a manifests file that changes under it as files do in the field:
//! written in pieces, emptied, replaced by something that is not a regular file or is too
//! large; and refusing such files at start with one line.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{self, BINARY, Process};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";

fn serve(path: &std::path::Path, extra: &[&str]) -> Process {
    let mut command = process::command(None);
    command
        .args(["--manifests", path.to_str().unwrap()])
        .args(extra);
    Process::start(command)
}

/// The one line of standard error with which the binary, given `--manifests` and `args`,
/// refuses to start (exit status 1).
fn refused_at_start(args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .arg("--manifests")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

async fn rcode(process: &Process, name: &str) -> ResponseCode {
    let client = udp_client(process.dns).await;
    ask(&client, name, RecordType::A, None)
        .await
        .metadata
        .response_code
}

/// A file rewritten in place in two writes half a second apart (as `kubectl get ... > file`
/// does) is served only once whole: never the half that lacks web-0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_in_pieces_is_served_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    let cluster = statefulset_cluster();
    std::fs::write(&path, documents(&cluster)).unwrap();
    let server = serve(&path, &[]);
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);

    let extra: Vec<String> = (0..4)
        .map(|i| {
            pod(
                "default",
                &format!("new-{i}"),
                "nginx",
                &format!("10.244.8.{i}"),
                Some((&format!("new-{i}"), "nginx-svc")),
                true,
            )
        })
        .collect();
    // The first piece: the Service and two new pods; web-0 and web-1 come in the second.
    let first = documents(&[cluster[0].clone(), extra[0].clone(), extra[1].clone()]) + "---\n";
    let second = documents(&[
        cluster[1].clone(),
        cluster[2].clone(),
        extra[2].clone(),
        extra[3].clone(),
    ]);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(first.as_bytes()).unwrap();
    file.flush().unwrap();
    let written = Instant::now();
    while written.elapsed() < Duration::from_millis(500) {
        assert_eq!(
            rcode(&server, WEB0).await,
            ResponseCode::NoError,
            "served half-written"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    file.write_all(second.as_bytes()).unwrap();
    drop(file);
    let whole = eventually(Duration::from_secs(5), || async {
        rcode(&server, "new-3.nginx-svc.default.svc.cluster.local.").await == ResponseCode::NoError
    })
    .await;
    assert!(whole.is_some(), "the whole file was never served");
    eprintln!("served {:?} after the last write", whole.unwrap());
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    // Read once, whole or in parts.
    assert_eq!(server.lines("manifests changed; reload").len(), 1);
}

/// A file emptied while serving (`: > file`) is logged and the last state kept; an empty List
/// is a cluster with no objects, and served as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_file_keeps_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = serve(&path, &[]);
    std::fs::File::create(&path).unwrap();
    let warned = server.wait_for_line("manifests file is empty", Duration::from_secs(5));
    assert!(warned.is_some_and(|(line, _)| line.contains("WARN")));
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    std::fs::write(&path, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    let emptied = eventually(Duration::from_secs(5), || async {
        rcode(&server, WEB0).await == ResponseCode::NXDomain
    });
    assert!(emptied.await.is_some());
}

/// Something that is not a regular file, or is larger than the bound, is refused: at start with
/// one line (a FIFO does not block start-up, a device is not read), on reload with the last
/// state kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfit_files_are_refused_at_start_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let large = dir.path().join("large.yaml");
    let mut cluster = statefulset_cluster();
    cluster.push(format!("# {}\n", "x".repeat(1000)));
    std::fs::write(&large, documents(&cluster)).unwrap();
    let size = std::fs::metadata(&large).unwrap().len();
    assert!((1024..2048).contains(&size), "{size}");
    for (args, expected) in [
        (
            vec![fifo.to_str().unwrap()],
            "not a regular file (a FIFO)".to_string(),
        ),
        (
            vec!["/dev/zero"],
            "not a regular file (a character device)".into(),
        ),
        (
            vec![dir.path().to_str().unwrap()],
            "not a regular file (a directory)".into(),
        ),
        (
            vec![large.to_str().unwrap(), "--manifests-max-size", "1Ki"],
            format!(
                "{}: {:.1} KiB is larger than --manifests-max-size (1 KiB)",
                large.display(),
                size as f64 / 1024.0
            ),
        ),
    ] {
        let started = Instant::now();
        let stderr = refused_at_start(&args);
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // On reload: a file grown past the bound, then a FIFO in its place; the last state stays.
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = serve(&path, &["--manifests-max-size", "2Ki"]);
    let mut grown = statefulset_cluster();
    for i in 0..20 {
        grown.push(pod(
            "default",
            &format!("p-{i}"),
            "other",
            "10.9.0.1",
            None,
            true,
        ));
    }
    replace_file(&path, &documents(&grown));
    let refused = server.wait_for_line(
        "is larger than --manifests-max-size",
        Duration::from_secs(5),
    );
    assert!(refused.is_some_and(|(line, _)| line.contains("ERROR")));
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    std::fs::remove_file(&path).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let refused = server.wait_for_line("not a regular file (a FIFO)", Duration::from_secs(5));
    assert!(refused.is_some());
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
}

/// A kubectl-style JSON List of `pods` StatefulSet pods of `nginx-svc` (every third one Ready),
/// its Service last, and `extra` items after it.
fn json_list(pods: usize, extra: &[String]) -> String {
    let mut items: Vec<String> = (0..pods)
        .map(|i| {
            let ready = if i % 3 == 0 { "True" } else { "False" };
            format!(
                r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "web-{i}",
  "namespace": "default", "labels": {{"app": "nginx"}}}}, "spec": {{"hostname": "web-{i}",
  "subdomain": "nginx-svc"}}, "status": {{"phase": "Running", "podIP": "10.8.{}.{}",
  "conditions": [{{"type": "Ready", "status": "{ready}"}}]}}}}"#,
                i / 250,
                i % 250 + 1
            )
        })
        .collect();
    items.push(
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-svc",
  "namespace": "default"}, "spec": {"clusterIP": "None", "selector": {"app": "nginx"}}}"#
            .into(),
    );
    items.extend_from_slice(extra);
    format!(
        "{{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n{}\n]}}\n",
        items.join(",\n")
    )
}

/// A large JSON List is loaded as it is read, in parts converted apart: pods listed before
/// their Service still back it, and an object given twice or an object DNS cannot use still
/// stops the start with one line naming the places, as in a file read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_list_loaded_in_parts_is_served_and_checked_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    std::fs::write(&path, json_list(3_000, &[])).unwrap();
    // Several of the runs converted apart (256 KiB each).
    assert!(std::fs::metadata(&path).unwrap().len() > 3 << 18);
    let server = serve(&path, &[]);
    let client = tcp_client(server.dns).await;
    let service = ask(
        &client,
        "nginx-svc.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await;
    let ready: Vec<String> = (0..3_000)
        .step_by(3)
        .map(|i| format!("10.8.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let mut expected = ready.clone();
    expected.sort();
    assert_eq!(a_records(&service), expected);
    let last = "web-2997.nginx-svc.default.svc.cluster.local.";
    assert_eq!(rcode(&server, last).await, ResponseCode::NoError);
    let not_ready = "web-2999.nginx-svc.default.svc.cluster.local.";
    assert_eq!(rcode(&server, not_ready).await, ResponseCode::NXDomain);
    drop(server);

    let again = json_list(3_000, &[]).replacen("\"web-7\"", "\"web-2\"", 1);
    let not_served = json_list(3_000, &[]).replacen("10.8.11.", "10.8.x.", 1);
    for (text, expected) in [
        (
            again,
            "document 1, items[7] (Pod default/web-2): metadata.name: a second Pod default/web-2 \
             (the first is document 1, items[2])",
        ),
        (
            not_served,
            "document 1, items[2750] (Pod default/web-2750): status.podIP: \"10.8.x.1\"",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let stderr = refused_at_start(&[path.to_str().unwrap()]);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// A JSON List edited under the server is checked whole, then sent to the state in parts: the
/// edit is served (a pod gone, one Ready now, one new), and a bad edit — an object given twice,
/// an address DNS cannot serve — is refused with its place named and the last state kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_list_reloaded_in_parts_is_served_or_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    std::fs::write(&path, json_list(3_000, &[])).unwrap();
    let server = serve(&path, &[]);
    let name = |i: usize| format!("web-{i}.nginx-svc.default.svc.cluster.local.");
    assert_eq!(rcode(&server, &name(0)).await, ResponseCode::NoError);
    assert_eq!(rcode(&server, &name(1)).await, ResponseCode::NXDomain);

    let new_pod = json_list(3_001, &[]);
    let new_pod = &new_pod[new_pod
        .find("{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"web-3000\"")
        .unwrap()..];
    let new_pod = &new_pod[..new_pod.find(",\n{").unwrap()];
    let edited = json_list(3_000, &[new_pod.to_string()])
        .replacen("\"web-0\"", "\"gone-0\"", 2)
        .replacen("\"status\": \"False\"", "\"status\": \"True\"", 1);
    replace_file(&path, &edited);
    let reloaded = server.wait_for_line("reloaded in parts", Duration::from_secs(10));
    assert!(reloaded.is_some(), "not reloaded in parts");
    // Logged once sent: the state may still be applying the list's end.
    let removed = eventually(Duration::from_secs(5), || async {
        rcode(&server, &name(0)).await == ResponseCode::NXDomain
    });
    assert!(removed.await.is_some(), "web-0 still answered");
    assert_eq!(rcode(&server, &name(1)).await, ResponseCode::NoError);
    assert_eq!(rcode(&server, &name(3000)).await, ResponseCode::NoError);
    let gone = "gone-0.nginx-svc.default.svc.cluster.local.";
    assert_eq!(rcode(&server, gone).await, ResponseCode::NoError);

    // Each bad edit also moves web-3 to another name, which must not be served.
    let moved = edited.replacen("\"web-3\"", "\"moved-3\"", 2);
    for (text, expected) in [
        (
            moved.replacen("\"web-9\"", "\"web-6\"", 1),
            "(Pod default/web-6): metadata.name: a second Pod default/web-6",
        ),
        (
            moved.replacen("10.8.11.", "10.8.x.", 1),
            "items[2750] (Pod default/web-2750): status.podIP: \"10.8.x.1\"",
        ),
    ] {
        replace_file(&path, &text);
        let refused = server.wait_for_line(expected, Duration::from_secs(10));
        assert!(refused.is_some_and(|(line, _)| line.contains("serving the last good state")));
        assert_eq!(rcode(&server, &name(3)).await, ResponseCode::NoError);
        let moved = "moved-3.nginx-svc.default.svc.cluster.local.";
        assert_eq!(rcode(&server, moved).await, ResponseCode::NXDomain);
    }
}
