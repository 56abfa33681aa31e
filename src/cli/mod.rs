//! The command line: `doodlebox [serve]` and the maintenance commands, one file each.
//!
//! [`args`] holds the clap definitions, parsed once into a [`Command`]; [`run`] dispatches it.
//! Every command is a thin door to the library: it parses its arguments, calls the same
//! services the HTTP API calls, and prints. Commands that need the stroke store while a
//! server holds it go through that server with the one [`client`].

pub mod admin;
mod args;
pub mod backup;
pub mod client;
pub mod doctor;
pub mod keys;
mod local;
pub mod migrate;
pub mod models;
pub mod serve;
pub mod train;
pub mod transfer;
pub mod worker;

pub use args::*;

/// Runs one parsed command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command() {
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => worker::worker(args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Train(args) => train::train(args),
        Command::Models { command, data } => match command {
            ModelsCommand::List => models::list_models(&data.data_dir),
            ModelsCommand::Activate { version } => models::activate_model(&data.data_dir, &version),
            ModelsCommand::Rollback => models::rollback_model(&data.data_dir),
        },
        Command::Admin { command, data } => match command {
            AdminCommand::Create {
                username,
                password_stdin,
            } => admin::create_admin(&data.data_dir, &username, password_stdin),
            AdminCommand::ResetPassword {
                username,
                password_stdin,
            } => admin::reset_admin_password(&data.data_dir, &username, password_stdin),
            AdminCommand::List => admin::list_admins(&data.data_dir),
        },
        Command::Backup { dest, data } => backup::backup(&data.data_dir, &dest),
        Command::Restore { src, force, data } => backup::restore(&src, &data.data_dir, force),
        Command::Verify(args) => match &args.database_url {
            Some(url) => migrate::verify_database(url),
            None => backup::verify(&args.data.data_dir),
        },
        Command::Migrate(args) => migrate::migrate(&args),
        Command::Import(args) => {
            transfer::import_files(&args.data.data_dir, &args.files, args.create_shapes)
        }
        Command::Export(args) => {
            transfer::export(&args.data.data_dir, &args.query_pairs(), &args.out)
        }
        Command::Keys { command, data } => match command {
            KeysCommand::Create { name, rate_per_min } => {
                keys::create_key(&data.data_dir, &name, rate_per_min)
            }
            KeysCommand::List => keys::list_keys(&data.data_dir),
            KeysCommand::Revoke { id } => keys::revoke_key(&data.data_dir, id),
        },
    }
}
