//! Application logging through fern: to stderr and to `log.dir/aigate.log`.
//! Nothing secret is ever logged: keys appear only as ids.

use std::path::Path;

pub fn init(level: log::LevelFilter, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log dir {}: {e}", dir.display()))?;
    let file = fern::log_file(dir.join("aigate.log"))
        .map_err(|e| format!("cannot open log file in {}: {e}", dir.display()))?;
    fern::Dispatch::new()
        .format(|out, message, record| {
            out.finish(format_args!(
                "{} {:5} {}: {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                record.level(),
                record.target(),
                message
            ))
        })
        .level(log::LevelFilter::Warn)
        .level_for("aigate", level)
        .level_for("actix_server", level.min(log::LevelFilter::Info))
        .chain(std::io::stderr())
        .chain(file)
        .apply()
        .map_err(|e| e.to_string())
}
