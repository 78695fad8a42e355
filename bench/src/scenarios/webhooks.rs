//! `webhooks`: S users on `/ws` each send M messages to an external app whose webhook is a
//! receiver the bench runs on loopback (HTTP/1.1, keep-alive, answering
//! `{"status":"SUCCESS"}` at once). Timed from send to the webhook's arrival; the server
//! must allow private destinations (`SWITCHBOARD_APPS_ALLOW_PRIVATE_DESTINATIONS=true`).

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::args::Protocol;
use crate::client::{observe_webhook, Outgoing};
use crate::http::{request, Auth};
use crate::report::{Latencies, Report};
use crate::scenarios::{close_all, measure, report_outcome, spawn_readers, Context, Flow, Lane, Shared, Source};
use crate::BenchError;

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"status\":\"SUCCESS\"}";

/// Serves one receiver connection: each request is read whole, observed and answered.
async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>, latencies: Arc<Mutex<Latencies>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let seen = observe_webhook(&String::from_utf8_lossy(&body));
        shared.observe(seen, None, &mut latencies.lock().expect("latencies"));
        if reader.get_mut().write_all(ANSWER).await.is_err() {
            return;
        }
    }
}

pub async fn run(ctx: &mut Context, senders: usize, messages: usize) -> Result<Report, BenchError> {
    if ctx.opts.protocol != Protocol::Json {
        return Err(BenchError::Usage("webhooks runs against Switchboard's own doors".into()));
    }
    let mut report = Report::new("webhooks");
    report.parameter("senders", senders);
    report.parameter("messages_per_sender", messages);
    report.parameter("window", ctx.opts.window);

    let shared = Shared::new((senders * messages) as u64, senders, ctx.opts.window, Flow::Receiver);
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| BenchError::Server(format!("receiver: {e}")))?;
    let url = format!("http://{}/hook", listener.local_addr().map_err(|e| BenchError::Server(e.to_string()))?);
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let (accepting_shared, accepting_latencies) = (shared.clone(), latencies.clone());
    let receiver = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, accepting_shared.clone(), accepting_latencies.clone()));
        }
    });

    let admin = ctx.admin.clone().ok_or_else(|| BenchError::Usage("no admin password".into()))?;
    let name = format!("{}bot", ctx.run_id);
    let (app_id, token) = admin.create_app(&name).await?;
    let outcome = async {
        let server = &ctx.opts.server;
        let registered = request(server, "POST", "/api/v1/register", Auth::Bearer(&token), Some(&json!({}))).await?;
        if registered.status != 200 {
            return Err(BenchError::Refused(format!("register answered {}: {}", registered.status, registered.text())));
        }
        let hook = request(server, "PUT", "/api/v1/webhook", Auth::Bearer(&token), Some(&json!({ "url": url }))).await?;
        if hook.status != 200 {
            return Err(BenchError::Refused(format!(
                "the webhook was refused ({}): {} (start the server with SWITCHBOARD_APPS_ALLOW_PRIVATE_DESTINATIONS=true)",
                hook.status,
                hook.text()
            )));
        }
        let accounts = ctx.accounts(senders).await?;
        let mut lanes = Vec::with_capacity(senders);
        let mut sources = Vec::with_capacity(senders);
        for (i, ws) in ctx.open_clients(&accounts, 1).await?.into_iter().enumerate() {
            let (sink, source) = ws.split();
            lanes.push(Lane { sink, outgoing: Outgoing::JsonChat { to: name.clone() } });
            sources.push((Source::Ws(source, Protocol::Json), Some(i)));
        }
        let readers = spawn_readers(sources, &shared);
        let before = ctx.server_sample();
        let (outcome, lanes) = measure(lanes, messages, &shared, &ctx.opts).await;
        ctx.add_server_cost(&mut report, before, outcome.delivered as f64, "server_cpu_per_delivery");
        let acked = ctx.await_acks(&shared, outcome.sent).await;
        readers.stop().await;
        let outcome = crate::scenarios::Outcome { acked, ..outcome };
        let latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
        report_outcome(&mut report, &outcome, latencies, true);
        report.note(format!("ceiling: each sender keeps {} messages in flight; one receiver on loopback", ctx.opts.window));
        close_all(lanes.into_iter().map(|l| l.sink).collect()).await;
        Ok(())
    }
    .await;
    receiver.abort();
    if !admin.delete_app(&app_id).await {
        report.note(format!("the bench's app {name} could not be removed"));
    }
    outcome.map(|()| report)
}
