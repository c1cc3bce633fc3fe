//! Benchmark / smoke tool: `cargo run --release -p tfops-render --example bench_render -- FILE
//! [--iterations N] [--print] [--release NAME] [--namespace NS]`. Times `tfops_render::render`
//! on FILE (in memory, so only the post-renderer core is measured) and prints MB/s.
//! With `-` as FILE it acts as a one-shot post-renderer process (stdin → stdout), so scripts
//! can time whole process runs side by side with `kubectl kustomize`.

use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_render: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut iterations = 20usize;
    let mut print = false;
    let mut opts = tfops_render::RenderOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--iterations N")?
            }
            "--print" => print = true,
            "--release" => opts.release = Some(args.next().ok_or("--release NAME")?),
            "--namespace" => opts.namespace = Some(args.next().ok_or("--namespace NS")?),
            "--config" => {
                let path = args.next().ok_or("--config FILE")?;
                let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
                opts.config = tfops_render::CatalogConfig::from_yaml(&bytes, &path)
                    .map_err(|e| e.to_string())?;
            }
            _ => file = Some(a),
        }
    }
    let file = file.ok_or("usage: bench_render FILE|- [--iterations N] [--print]")?;
    if file == "-" {
        use std::io::{Read, Write};
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| format!("stdin: {e}"))?;
        let r = tfops_render::render(&input, &opts).map_err(|e| e.to_string())?;
        std::io::stdout()
            .write_all(&r.output)
            .map_err(|e| format!("stdout: {e}"))?;
        return Ok(());
    }
    let input = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    if print {
        let r = tfops_render::render(&input, &opts).map_err(|e| e.to_string())?;
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!("{:?} {:?}", r.helm_flavor, r.summary);
        print!("{}", String::from_utf8_lossy(&r.output));
        return Ok(());
    }
    let warm = tfops_render::render(&input, &opts).map_err(|e| e.to_string())?;
    let identical = warm.output == input;
    let start = Instant::now();
    for _ in 0..iterations {
        let r = tfops_render::render(&input, &opts).map_err(|e| e.to_string())?;
        std::hint::black_box(r.output.len());
    }
    let secs = start.elapsed().as_secs_f64() / iterations as f64;
    let mb = input.len() as f64 / 1_000_000.0;
    println!(
        "{file}: {:.2} MB, {:.3} ms/render, {:.0} MB/s, output identical to input: {identical}",
        mb,
        secs * 1000.0,
        mb / secs
    );
    Ok(())
}
