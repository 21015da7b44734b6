//! `xietong draw`: tools of the double-random programme that need no running group.
//! `verify` recomputes a committed draw (the proof from `GET /api/v1/campaigns/{id}/proof`)
//! from the entity directory file and says whether it matches; `generate` writes a realistic
//! synthetic directory for demos and benchmarks.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ledger::campaign::Campaign;
use ledger::BureauCode;

#[derive(Args)]
pub struct DrawArgs {
    #[command(subcommand)]
    command: DrawCommand,
}

#[derive(Subcommand)]
enum DrawCommand {
    /// Recompute a committed draw and compare: exit 0 when it matches, 1 when it does not.
    Verify {
        /// The campaign's proof (JSON, from GET /api/v1/campaigns/{id}/proof).
        #[arg(long)]
        proof: PathBuf,
        /// The entity directory file the campaign names (GET /api/v1/directories/entities/{sha256}).
        #[arg(long)]
        directory: PathBuf,
    },
    /// Write a synthetic entity directory (CSV) with valid USCCs over real county codes.
    Generate {
        #[arg(long)]
        entities: u64,
        /// The region whose counties the entities are spread over.
        #[arg(long, default_value = "440100")]
        region: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

/// A campaign's proof: its record, for a draw committed in parts each part's digest, and for
/// a draw under a yearly cap the cap (an input kept beside the record's).
#[derive(serde::Deserialize)]
struct Proof {
    #[serde(flatten)]
    campaign: Campaign,
    draw_parts: Option<Vec<ledger::campaign::draw_parts::PartDigest>>,
    year_cap: Option<ledger::campaign::risk_files::YearCap>,
}

/// Runs the command; `Ok(false)` when a verification found a mismatch.
pub fn run(args: DrawArgs) -> anyhow::Result<bool> {
    match args.command {
        DrawCommand::Verify { proof, directory } => {
            let text = std::fs::read(&proof).with_context(|| format!("reading {}", proof.display()))?;
            let proof: Proof = serde_json::from_slice(&text).context("the proof is not a campaign record")?;
            let campaign = proof.campaign;
            let mut record = campaign.draw.context("the campaign is not drawn yet")?;
            record.inputs.year_cap = proof.year_cap;
            let bytes = std::fs::read(&directory).with_context(|| format!("reading {}", directory.display()))?;
            let started = std::time::Instant::now();
            let regions = ledger::Regions::compiled();
            let verified = match &proof.draw_parts {
                Some(parts) => draw::verify_in_parts(regions, &record, parts, &bytes),
                None => draw::verify(regions, &record, &bytes),
            };
            match verified {
                Ok(verified) => {
                    println!(
                        "verified: campaign {} drew {} inspections from {} entities in scope, seed {} ({:.2} s)",
                        campaign.id,
                        verified.inspections,
                        verified.entities_in_scope,
                        verified.seed,
                        started.elapsed().as_secs_f64()
                    );
                    Ok(true)
                }
                Err(mismatch) => {
                    println!("MISMATCH: campaign {}: {mismatch}", campaign.id);
                    Ok(false)
                }
            }
        }
        DrawCommand::Generate { entities, region, seed, out } => {
            let region =
                BureauCode::parse_compiled(&region).with_context(|| format!("{region} is not a region code"))?;
            let started = std::time::Instant::now();
            let bytes = draw::generate::generate(entities, region, seed);
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{entities} entities, {} bytes, SHA-256 {} in {:.2} s",
                bytes.len(),
                draw::directory::sha256_hex(&bytes),
                started.elapsed().as_secs_f64()
            );
            Ok(true)
        }
    }
}
