//! The HTML report: one self-contained file (inline CSS, JavaScript and SVG, nothing fetched)
//! that opens from disk. The page's fixed parts (summary, lab, expectations, programs, rules)
//! are written here; ladders and packet lists, which can hold thousands of packets, are
//! drawn by the page's script from data embedded as JSON, a page (ladders) or a screenful
//! (packet lists) at a time, so that a large run opens quickly.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::ladder::Ladder;
use super::packets::{Row, rows};
use super::{LabReport, Report};
use crate::trace::Trace;

/// The page's style and script, kept as files so that they read as CSS and JavaScript.
const STYLE: &str = include_str!("../../assets/report.css");
const SCRIPT: &str = include_str!("../../assets/report.js");

/// Program output lines written per program; the rest is in `report.json`.
const MAX_OUTPUT_LINES: usize = 5000;

/// Hosts drawn per subnet; the rest are counted.
const MAX_DRAWN_HOSTS: usize = 12;

/// What the page's script draws.
#[derive(Serialize)]
struct Data<'a> {
    ladders: &'a [Ladder],
    captures: Vec<CaptureData>,
}

#[derive(Serialize)]
struct CaptureData {
    name: String,
    rows: Vec<Row>,
}

/// Text for HTML: element content and attribute values alike.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters a program printed are shown, not passed on.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A link to a pcap: its name when the page sits beside it, else a `file:` URL.
fn pcap_href(pcap: &Path, html_dir: Option<&Path>) -> String {
    // Compared and linked as absolute paths: `--out captures/` gives relative ones.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let pcap = absolute(pcap);
    let beside = html_dir.is_some_and(|d| pcap.parent() == Some(absolute(d).as_path()));
    let raw = match pcap.file_name() {
        Some(name) if beside => name.to_string_lossy().into_owned(),
        _ => format!("file://{}", pcap.display()),
    };
    // Percent-encode what a URL cannot hold as it is.
    let mut out = String::new();
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The page of `report`, whose captures are `traces`, to be written in `html_dir` (for links
/// to the pcaps).
pub(crate) fn render(report: &Report, traces: &[Trace], html_dir: Option<&Path>) -> String {
    let origin = std::time::Duration::from_nanos(report.origin_unix_ns);
    let data = Data {
        ladders: &report.ladders,
        captures: traces
            .iter()
            .map(|t| CaptureData {
                name: t.host.clone(),
                rows: rows(t, origin),
            })
            .collect(),
    };
    // In a script element, `<` is written as an escape: no `</script>` or `<!--` in the data
    // can end the element early.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{\"ladders\":[],\"captures\":[]}".into())
        .replace('<', "\\u003c");
    let mut s = String::with_capacity(json.len() + 64 * 1024);
    let held = report.expectations.iter().filter(|c| c.held).count();
    let total = report.expectations.len();
    let (verdict_class, verdict) = if report.passed {
        (
            "pass",
            format!("passed: {held} of {total} expectations held"),
        )
    } else {
        (
            "fail",
            format!("failed: {} of {total} expectations failed", total - held),
        )
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <title>tcplab: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>{name}</h1><p class=\"description\">{description}</p>\
         <p class=\"verdict {verdict_class}\" id=\"verdict\">{verdict} <span class=\"muted\">in {wall:.1} s</span></p>\
         <nav><a href=\"#lab\">Lab</a> <a href=\"#expectations\">Expectations</a> \
         <a href=\"#ladders\">Ladders</a> <a href=\"#rules\">Rules</a> \
         <a href=\"#programs\">Programs</a> <a href=\"#captures\">Captures</a></nav>\
         <div id=\"errors\" hidden></div></header>\n<main>\n",
        name = esc(&report.scenario),
        description = esc(&report.description),
        wall = report.wall_time_s,
    );
    lab_section(&mut s, &report.lab);
    expectations_section(&mut s, report);
    ladders_section(&mut s, report);
    rules_section(&mut s, report);
    programs_section(&mut s, report);
    captures_section(&mut s, report, traces, html_dir);
    let _ = write!(
        s,
        "</main>\n<footer>Written by tcplab {}. Times are seconds since the captures started.</footer>\n\
         <script id=\"data\" type=\"application/json\">{json}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn lab_section(s: &mut String, lab: &LabReport) {
    let _ = write!(
        s,
        "<section id=\"lab\"><h2>Lab</h2><p class=\"muted\">{} {} with {} hosts.</p>",
        if lab.vpc { "A VPC," } else { "One subnet," },
        esc(&lab.cidr),
        lab.hosts.len()
    );
    s.push_str(&lab_svg(lab));
    // The rules in words, under the drawing.
    s.push_str("<details open><summary>Rules between the hosts</summary><table class=\"rules\"><thead><tr><th>Where</th><th>What</th><th>Rules</th></tr></thead><tbody>");
    for h in &lab.hosts {
        if !h.security_groups.is_empty() {
            let mut rules: Vec<String> = h.ingress.iter().map(|r| format!("in: {r}")).collect();
            match &h.egress {
                None => rules.push("out: everything".into()),
                Some(e) => rules.extend(e.iter().map(|r| format!("out: {r}"))),
            }
            if h.ingress.is_empty() {
                rules.insert(0, "in: nothing".into());
            }
            let _ = write!(
                s,
                "<tr><td>{}</td><td>security groups {}</td><td>{}</td></tr>",
                esc(&h.name),
                esc(&h.security_groups.join(", ")),
                lines(&rules)
            );
        }
        if !h.firewall.is_empty() {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>host firewall</td><td>{}</td></tr>",
                esc(&h.name),
                lines(&h.firewall)
            );
        }
        if let Some(impair) = &h.impair {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>link impairments</td><td>{}</td></tr>",
                esc(&h.name),
                esc(impair)
            );
        }
    }
    if !lab.fabric_firewall.is_empty() {
        let _ = write!(
            s,
            "<tr><td>fabric</td><td>firewall</td><td>{}</td></tr>",
            lines(&lab.fabric_firewall)
        );
    }
    for n in &lab.subnets {
        if let Some(acl) = &n.acl {
            let mut rules: Vec<String> = n
                .acl_inbound
                .iter()
                .map(|r| format!("inbound: {r}"))
                .collect();
            rules.extend(n.acl_outbound.iter().map(|r| format!("outbound: {r}")));
            let _ = write!(
                s,
                "<tr><td>subnet {}</td><td>network ACL {}</td><td>{}</td></tr>",
                esc(&n.name),
                esc(acl),
                lines(&rules)
            );
        }
        if !n.routes.is_empty() {
            let _ = write!(
                s,
                "<tr><td>subnet {}</td><td>route table {}</td><td>{}</td></tr>",
                esc(&n.name),
                esc(n.route_table.as_deref().unwrap_or("")),
                lines(&n.routes)
            );
        }
    }
    s.push_str("</tbody></table></details></section>\n");
}

fn lines(list: &[String]) -> String {
    list.iter().map(|l| esc(l)).collect::<Vec<_>>().join("<br>")
}

/// The lab drawn: the VPC router on top (with a VPC), a box per subnet with its bridge and
/// network ACL, and its hosts with their addresses, security groups and firewalls.
fn lab_svg(lab: &LabReport) -> String {
    const SUBNET_W: usize = 270;
    const GAP: usize = 40;
    const HOST_H: usize = 62;
    const HOST_GAP: usize = 12;
    let top = if lab.vpc { 90 } else { 10 };
    let head = 84;
    let tallest = lab
        .subnets
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let n = lab.hosts.iter().filter(|h| h.subnet == i).count();
            n.min(MAX_DRAWN_HOSTS) + usize::from(n > MAX_DRAWN_HOSTS)
        })
        .max()
        .unwrap_or(0);
    let n = lab.subnets.len().max(1);
    let width = n * SUBNET_W + (n - 1) * GAP + 20;
    let subnet_h = head + tallest * (HOST_H + HOST_GAP) + 10;
    let height = top + subnet_h + 10;
    let mut s = format!(
        "<svg class=\"lab\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"the lab\">"
    );
    let x_of = |i: usize| 10 + i * (SUBNET_W + GAP);
    if lab.vpc {
        let cx = width / 2;
        let _ = write!(
            s,
            "<g class=\"router\"><rect x=\"{}\" y=\"10\" width=\"220\" height=\"44\" rx=\"22\"/>\
             <text x=\"{cx}\" y=\"30\" class=\"name\">VPC router</text><text x=\"{cx}\" y=\"46\">{}</text></g>",
            cx - 110,
            esc(&lab.cidr)
        );
        for i in 0..lab.subnets.len() {
            let sx = x_of(i) + SUBNET_W / 2;
            let _ = write!(
                s,
                "<line class=\"link\" x1=\"{cx}\" y1=\"54\" x2=\"{sx}\" y2=\"{top}\"/>"
            );
        }
    }
    for (i, subnet) in lab.subnets.iter().enumerate() {
        let x = x_of(i);
        let _ = write!(
            s,
            "<g class=\"subnet\"><rect x=\"{x}\" y=\"{top}\" width=\"{SUBNET_W}\" height=\"{subnet_h}\" rx=\"8\"/>\
             <text x=\"{}\" y=\"{}\" class=\"name\">{} {}</text>",
            x + 12,
            top + 20,
            esc(&subnet.name),
            esc(&subnet.cidr)
        );
        let mut notes = Vec::new();
        if lab.vpc {
            notes.push(match &subnet.acl {
                Some(a) => format!("network ACL {a}"),
                None => "default network ACL (allows all)".into(),
            });
            if let Some(t) = &subnet.route_table {
                notes.push(format!("route table {t}: {} routes", subnet.routes.len()));
            }
        } else if !lab.fabric_firewall.is_empty() {
            notes.push(format!(
                "fabric firewall: {} rules",
                lab.fabric_firewall.len()
            ));
        }
        for (k, note) in notes.iter().enumerate() {
            let class = if note.starts_with("network ACL") || note.starts_with("fabric") {
                "rule"
            } else {
                "muted"
            };
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" class=\"{class}\">{}</text>",
                x + 12,
                top + 38 + k * 15,
                esc(note)
            );
        }
        // The bridge, and a host box on a tie to it.
        let bridge_y = top + head - 14;
        let _ = write!(
            s,
            "<line class=\"bridge\" x1=\"{}\" y1=\"{bridge_y}\" x2=\"{}\" y2=\"{bridge_y}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"muted small\">bridge (the fabric)</text>",
            x + 12,
            x + SUBNET_W - 12,
            x + SUBNET_W - 12,
            bridge_y - 4
        );
        let hosts: Vec<_> = lab.hosts.iter().filter(|h| h.subnet == i).collect();
        let trunk_x = x + 22;
        let shown = hosts.len().min(MAX_DRAWN_HOSTS);
        if shown > 0 {
            let last_y = top + head + (shown - 1) * (HOST_H + HOST_GAP) + HOST_H / 2;
            let _ = write!(
                s,
                "<line class=\"link\" x1=\"{trunk_x}\" y1=\"{bridge_y}\" x2=\"{trunk_x}\" y2=\"{last_y}\"/>"
            );
        }
        for (k, h) in hosts.iter().take(shown).enumerate() {
            let y = top + head + k * (HOST_H + HOST_GAP);
            let hx = x + 40;
            let guarded = !h.security_groups.is_empty();
            let _ = write!(
                s,
                "<line class=\"link\" x1=\"{trunk_x}\" y1=\"{}\" x2=\"{hx}\" y2=\"{}\"/>\
                 <g class=\"host{}\" data-host=\"{}\"><rect x=\"{hx}\" y=\"{y}\" width=\"{}\" height=\"{HOST_H}\" rx=\"6\"/>\
                 <text x=\"{}\" y=\"{}\" class=\"name\">{}</text><text x=\"{}\" y=\"{}\" class=\"addr\">{}</text>",
                y + HOST_H / 2,
                y + HOST_H / 2,
                if guarded { " guarded" } else { "" },
                esc(&h.name),
                SUBNET_W - 52,
                hx + 10,
                y + 17,
                esc(&h.name),
                hx + 10,
                y + 32,
                esc(&h.address)
            );
            let groups = if guarded {
                format!("SG: {}", h.security_groups.join(", "))
            } else {
                "no security group".into()
            };
            let mut line = groups;
            if !h.firewall.is_empty() {
                line.push_str(&format!("; firewall: {} rules", h.firewall.len()));
            }
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" class=\"{}\">{}</text></g>",
                hx + 10,
                y + 50,
                if guarded || !h.firewall.is_empty() {
                    "rule"
                } else {
                    "muted"
                },
                esc(&line)
            );
        }
        if hosts.len() > shown {
            let y = top + head + shown * (HOST_H + HOST_GAP) + 20;
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{y}\" class=\"muted\">and {} more hosts</text>",
                x + 40,
                hosts.len() - shown
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

fn expectations_section(s: &mut String, report: &Report) {
    s.push_str("<section id=\"expectations\"><h2>Expectations</h2><table class=\"expectations\"><thead><tr><th></th><th>Expectation</th><th>What was seen</th><th>Where</th></tr></thead><tbody>");
    for c in &report.expectations {
        let _ = write!(
            s,
            "<tr class=\"{}\"><td class=\"mark\">{}</td><td>{}</td><td>{}</td><td class=\"at\">{}</td></tr>",
            if c.held { "held" } else { "failed" },
            if c.held { "ok" } else { "FAIL" },
            esc(&c.expectation),
            esc(&c.detail),
            c.at.as_deref().map(esc).unwrap_or_default()
        );
    }
    s.push_str("</tbody></table></section>\n");
}

fn ladders_section(s: &mut String, report: &Report) {
    s.push_str("<section id=\"ladders\"><h2>Ladders</h2><p class=\"muted\">One per conversation: a column per capture point, time flowing down, an arrow per packet from where it was first seen to where it was last seen. A packet that a rule stopped ends in \u{2715}, with the rule, when the rules were traced; one that ends without \u{2715} was seen no further before the captures stopped (still held on a delayed link, say, or lost where no capture looks). Identical packets (a SYN and its retransmissions) are told apart by time, so a delay longer than the retransmission timer can pair them wrongly. Click an arrow to find the packet in its capture.</p>");
    if report.ladders.is_empty() {
        s.push_str("<p>No TCP, UDP or ICMP packet was captured.</p>");
    }
    for (k, l) in report.ladders.iter().enumerate() {
        let _ = write!(
            s,
            "<div class=\"ladder\" data-ladder=\"{k}\"><h3>{}</h3>{}<div class=\"pager\"></div><div class=\"canvas\"></div></div>",
            esc(&l.title),
            if l.omitted > 0 {
                format!(
                    "<p class=\"muted\">{} more packets are left out of this ladder; the packet lists and the pcaps hold them all.</p>",
                    l.omitted
                )
            } else {
                String::new()
            }
        );
    }
    s.push_str("</section>\n");
}

fn rules_section(s: &mut String, report: &Report) {
    let r = &report.rules;
    s.push_str("<section id=\"rules\"><h2>What the rules did</h2>");
    if !r.traced {
        s.push_str("<p class=\"muted\">The lab's rules did not trace packets (run without <code>--no-rule-trace</code> to see which rule stopped each packet).</p>");
    }
    for place in &r.lost {
        let _ = write!(
            s,
            "<p class=\"warn\">Trace events were lost in {}: what is said of it may be incomplete.</p>",
            esc(place)
        );
    }
    if !r.flows.is_empty() {
        s.push_str("<ul class=\"flows\">");
        for f in &r.flows {
            let _ = write!(s, "<li>{}</li>", esc(f));
        }
        s.push_str("</ul>");
    }
    let stopped: Vec<_> = r.packets.iter().filter(|p| p.fate.stopped()).collect();
    if !stopped.is_empty() {
        s.push_str("<table class=\"stopped\"><thead><tr><th>Time</th><th>Where</th><th>Packet</th><th>What stopped it</th></tr></thead><tbody>");
        for p in stopped.iter().take(MAX_OUTPUT_LINES) {
            let _ = write!(
                s,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.at_s.map(|t| format!("{t:.6}")).unwrap_or_default(),
                esc(&p.place),
                esc(&p.packet),
                esc(&p.verdict)
            );
        }
        s.push_str("</tbody></table>");
    } else if r.traced {
        s.push_str("<p>No rule stopped a packet.</p>");
    }
    s.push_str("</section>\n");
}

fn programs_section(s: &mut String, report: &Report) {
    s.push_str("<section id=\"programs\"><h2>Programs</h2>");
    for p in &report.programs {
        let ended = match (&p.class, p.exit_code) {
            (Some(c), _) => c.clone(),
            (None, Some(code)) => format!("exit {code}"),
            (None, None) => "killed by a signal".to_string(),
        };
        let _ = write!(
            s,
            "<div class=\"program\"><h3>{} <code>{}</code></h3><p class=\"muted\">started at {:.3} s, {} after {:.3} s</p>",
            esc(&p.name),
            esc(&p.command),
            p.started_s,
            esc(&ended),
            p.duration_s
        );
        if p.output.is_empty() {
            s.push_str("<p class=\"muted\">(no output)</p>");
        } else {
            s.push_str("<table class=\"output\"><tbody>");
            for l in p.output.iter().take(MAX_OUTPUT_LINES) {
                let err = l.stream == "stderr";
                let _ = write!(
                    s,
                    "<tr class=\"{}\"><td class=\"num\">{:.6}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                    if err { "stderr" } else { "stdout" },
                    l.at_s,
                    if err { "err" } else { "out" },
                    esc(&l.text)
                );
            }
            s.push_str("</tbody></table>");
            if p.output.len() > MAX_OUTPUT_LINES {
                let _ = write!(
                    s,
                    "<p class=\"muted\">{} more lines are in report.json.</p>",
                    p.output.len() - MAX_OUTPUT_LINES
                );
            }
        }
        s.push_str("</div>");
    }
    s.push_str("</section>\n");
}

fn captures_section(s: &mut String, report: &Report, traces: &[Trace], html_dir: Option<&Path>) {
    s.push_str("<section id=\"captures\"><h2>Captures</h2><p class=\"muted\">Wireshark's columns and colouring rules: <span class=\"swatch tcp-synfin\">TCP SYN/FIN</span> <span class=\"swatch tcp-rst\">TCP RST</span> <span class=\"swatch bad-tcp\">Bad TCP (retransmission, zero window)</span> <span class=\"swatch icmp-error\">ICMP errors</span> <span class=\"swatch tcp\">TCP</span> <span class=\"swatch udp\">UDP</span> <span class=\"swatch icmp\">ICMP</span> <span class=\"swatch arp\">ARP</span></p><div class=\"captures\">");
    for (c, t) in traces.iter().enumerate() {
        let dropped = report.captures.get(c).map_or(t.drops, |r| r.dropped);
        let link = t
            .pcap
            .as_deref()
            .map(|p| {
                format!(
                    " <a href=\"{}\" download>{}</a>",
                    esc(&pcap_href(p, html_dir)),
                    esc(&p.file_name().unwrap_or_default().to_string_lossy())
                )
            })
            .unwrap_or_default();
        let _ = write!(
            s,
            "<div class=\"capture\" id=\"capture-{c}\"><h3>{} <span class=\"muted\">on {}: {} packet{}, {} dropped</span>{link}</h3>\
             <input class=\"filter\" type=\"search\" placeholder=\"filter: text in any column\" aria-label=\"filter the packets of {}\">\
             <div class=\"packets\" data-capture=\"{c}\"></div></div>",
            esc(&t.host),
            esc(&t.interface),
            t.packets.len(),
            if t.packets.len() == 1 { "" } else { "s" },
            dropped,
            esc(&t.host)
        );
    }
    s.push_str("</div></section>\n");
}
