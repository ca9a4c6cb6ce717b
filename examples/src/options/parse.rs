//! Reading options from the command line and from ini files, in uWSGI's order.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};
use ini::{Ini, ParseOption};

use super::OptionsError;
use super::table::{Kind, OPTIONS, OptSpec, find};

/// Deepest chain of ini files including each other.
const MAX_INI_DEPTH: usize = 8;

/// Where a setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    Cli,
    /// A key in an ini file's section.
    Ini {
        /// The file.
        file: PathBuf,
        /// The section (`uwsgi` unless `FILE:SECTION` was given).
        section: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cli => f.write_str("command line"),
            Origin::Ini { file, section } => write!(f, "{} [{section}]", file.display()),
        }
    }
}

/// One option occurrence, in the order uWSGI would apply it.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The option.
    pub spec: &'static OptSpec,
    /// Its value after placeholder expansion (`"true"` for a flag given alone).
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The settings of one command line with its ini files expanded in place, and the warnings
/// found on the way (ignored options, unknown ini keys).
#[derive(Debug, Default)]
pub struct Parsed {
    /// Settings in application order.
    pub settings: Vec<Setting>,
    /// One line each, naming the option.
    pub warnings: Vec<String>,
}

/// The clap command: every option of the table, grouped for `--help`.
pub fn command() -> Command {
    let mut cmd = Command::new("ferrule")
        .version(env!("CARGO_PKG_VERSION"))
        .about("WSGI application server that reads uWSGI's options and .ini files")
        .long_about(
            "WSGI application server that reads uWSGI's options and .ini files.\n\n\
             Options can be given as --key value, --key=value, or as `key = value` lines in the \
             [uwsgi] section of an ini file passed with --ini FILE or as the only argument. \
             Unix sockets, `%d` (the ini file's directory) and `$(ENV_VAR)` work as in uWSGI.",
        )
        .arg(
            Arg::new("config")
                .value_name("CONFIG.ini")
                .help("an ini file to read, as with --ini")
                .num_args(0..)
                .action(ArgAction::Append),
        );
    for spec in OPTIONS {
        cmd = cmd.arg(arg_for(spec));
    }
    cmd
}

fn arg_for(spec: &'static OptSpec) -> Arg {
    let mut arg = Arg::new(spec.name)
        .long(spec.name)
        .help(spec.help)
        .help_heading(spec.group)
        .action(ArgAction::Append);
    if !spec.aliases.is_empty() {
        arg = arg.visible_aliases(spec.aliases.iter().copied());
    }
    if let Some(short) = spec.short {
        arg = arg.short(short);
    }
    match spec.kind {
        Kind::Flag
        | Kind::Ignored {
            takes_value: false, ..
        }
        | Kind::Unsupported {
            takes_value: false, ..
        } => arg.num_args(0).default_missing_value("true"),
        Kind::OptionalValue(default) => arg
            .num_args(0..=1)
            .default_missing_value(default)
            .value_name("VALUE"),
        _ => arg
            .num_args(1)
            .value_name("VALUE")
            .allow_hyphen_values(true),
    }
}

/// Parses a command line (`args[0]` is the program name) and the ini files it names.
///
/// `env` looks up environment variables for `$(VAR)`.
///
/// # Errors
///
/// [`OptionsError::Cli`] for what clap refuses (including `--help` and `--version`, which
/// the caller prints and exits 0 for); [`OptionsError::Unsupported`] for an option ferrule does
/// not support; ini errors as [`OptionsError`] names them.
pub fn parse_args<I, T>(
    args: I,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, OptionsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    // Rebuild the order of the command line from clap's indices.
    let mut ordered: Vec<(usize, Option<&'static OptSpec>, String)> = Vec::new();
    for spec in OPTIONS {
        let (Some(indices), Some(values)) =
            (matches.indices_of(spec.name), matches.get_raw(spec.name))
        else {
            continue;
        };
        for (index, value) in indices.zip(values) {
            ordered.push((index, Some(spec), value.to_string_lossy().into_owned()));
        }
    }
    if let (Some(indices), Some(values)) = (matches.indices_of("config"), matches.get_raw("config"))
    {
        for (index, value) in indices.zip(values) {
            ordered.push((index, None, value.to_string_lossy().into_owned()));
        }
    }
    ordered.sort_by_key(|(index, ..)| *index);

    let mut reader = Reader {
        env,
        parsed: Parsed::default(),
        values: HashMap::new(),
        unknown: Vec::new(),
        referenced: HashSet::new(),
    };
    let ini = find("ini").expect("invariant: the table has ini");
    for (_, spec, value) in ordered {
        let spec = match spec {
            Some(spec) => spec,
            None if value.ends_with(".ini") || value.contains(".ini:") => ini,
            None => {
                return Err(OptionsError::BadValue {
                    origin: Origin::Cli,
                    name: "ini".into(),
                    value,
                    message: "only .ini configuration files are supported".into(),
                });
            }
        };
        reader.push(spec, value, Origin::Cli, 0)?;
    }
    reader.finish()
}

struct Reader<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    parsed: Parsed,
    /// Every key seen so far and its last value: `%(name)` placeholders.
    values: HashMap<String, String>,
    /// Unknown ini keys (placeholders in uWSGI), with where they were.
    unknown: Vec<(String, Origin)>,
    /// Placeholder names that were used.
    referenced: HashSet<String>,
}

impl Reader<'_> {
    fn push(
        &mut self,
        spec: &'static OptSpec,
        value: String,
        origin: Origin,
        depth: usize,
    ) -> Result<(), OptionsError> {
        match spec.kind {
            Kind::Unsupported { why, .. } => {
                return Err(OptionsError::Unsupported {
                    origin,
                    name: spec.name,
                    why,
                });
            }
            Kind::Ignored { why, .. } => {
                self.parsed.warnings.push(format!(
                    "{origin}: option `{}` is ignored: {why}",
                    spec.name
                ));
                return Ok(());
            }
            _ => {}
        }
        self.values.insert(spec.name.to_string(), value.clone());
        if spec.name == "ini" {
            return self.read_ini(&value, &origin, depth + 1);
        }
        self.parsed.settings.push(Setting {
            spec,
            value,
            origin,
        });
        Ok(())
    }

    fn read_ini(&mut self, arg: &str, from: &Origin, depth: usize) -> Result<(), OptionsError> {
        let (file, section) = split_section(arg);
        if depth > MAX_INI_DEPTH {
            return Err(OptionsError::IniDepth { file: file.into() });
        }
        let text = std::fs::read_to_string(file).map_err(|source| OptionsError::ReadIni {
            file: file.into(),
            from: from.clone(),
            source,
        })?;
        // uWSGI takes values raw: no quote or backslash processing.
        let opt = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini = Ini::load_from_str_opt(&text, opt).map_err(|e| OptionsError::BadIni {
            file: file.into(),
            message: e.to_string(),
        })?;
        let Some(props) = ini.section(Some(section)) else {
            return Err(OptionsError::BadIni {
                file: file.into(),
                message: format!("no [{section}] section"),
            });
        };
        let magic = Magic::for_file(Path::new(file));
        let origin = Origin::Ini {
            file: file.into(),
            section: section.to_string(),
        };
        for (key, raw) in props.iter() {
            let value = self.expand(raw, &magic, &origin, key)?;
            match find(key) {
                Some(spec) => self.push(spec, value, origin.clone(), depth)?,
                None => {
                    self.values.insert(key.to_string(), value);
                    self.unknown.push((key.to_string(), origin.clone()));
                }
            }
        }
        Ok(())
    }

    /// Expands uWSGI's magic variables, `%(placeholder)` and `$(ENV)` in an ini value.
    fn expand(
        &mut self,
        raw: &str,
        magic: &Magic,
        origin: &Origin,
        key: &str,
    ) -> Result<String, OptionsError> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find(['%', '$']) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let (replacement, used) = if let Some(name) = enclosed(tail, "%(") {
                let Some(value) = self.values.get(name) else {
                    return Err(OptionsError::BadValue {
                        origin: origin.clone(),
                        name: key.into(),
                        value: raw.into(),
                        message: format!("placeholder %({name}) is not defined before this line"),
                    });
                };
                self.referenced.insert(name.to_string());
                (value.clone(), name.len() + 3)
            } else if let Some(name) = enclosed(tail, "$(") {
                let value = (self.env)(name).unwrap_or_else(|| {
                    self.parsed.warnings.push(format!(
                        "{origin}: environment variable {name} in `{key}` is not set; using an empty string"
                    ));
                    String::new()
                });
                (value, name.len() + 3)
            } else if tail.starts_with('%') {
                match tail.as_bytes().get(1).and_then(|&c| magic.get(c)) {
                    Some(value) => (value, 2),
                    None => (tail[..1].to_string(), 1),
                }
            } else {
                ("$".to_string(), 1)
            };
            out.push_str(&replacement);
            rest = &tail[used..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn finish(mut self) -> Result<Parsed, OptionsError> {
        let strict = self
            .parsed
            .settings
            .iter()
            .rev()
            .find(|s| s.spec.name == "strict")
            .is_some_and(|s| super::parse_bool(&s.value).unwrap_or(true));
        for (key, origin) in self.unknown {
            if self.referenced.contains(&key) {
                continue;
            }
            if strict {
                return Err(OptionsError::UnknownStrict { origin, name: key });
            }
            self.parsed.warnings.push(format!(
                "{origin}: unknown option `{key}` is ignored (uWSGI would treat it as a placeholder)"
            ));
        }
        Ok(self.parsed)
    }
}

/// `FILE:SECTION` → (FILE, SECTION); the section defaults to `uwsgi`.
fn split_section(arg: &str) -> (&str, &str) {
    match arg.rsplit_once(':') {
        Some((file, section)) if !section.is_empty() && !section.contains('/') => (file, section),
        _ => (arg, "uwsgi"),
    }
}

/// `open` + NAME + `)` at the start of `s` → NAME.
fn enclosed<'s>(s: &'s str, open: &str) -> Option<&'s str> {
    let inner = s.strip_prefix(open)?;
    let end = inner.find(')')?;
    Some(&inner[..end])
}

/// uWSGI's magic variables for one config file.
struct Magic {
    /// `%d`: absolute directory of the file, with a trailing slash.
    dir: String,
    /// `%p`: absolute path of the file.
    path: String,
    /// `%s`: file name.
    name: String,
    /// `%n`: file name without extension.
    stem: String,
    /// `%e`: extension.
    ext: String,
    /// `%c`: name of the directory holding the file.
    dir_name: String,
}

impl Magic {
    fn for_file(file: &Path) -> Magic {
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let dir = abs.parent().unwrap_or(Path::new("/"));
        let text = |p: Option<&std::ffi::OsStr>| {
            p.map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut dir_str = dir.display().to_string();
        if !dir_str.ends_with('/') {
            dir_str.push('/');
        }
        Magic {
            dir: dir_str,
            path: abs.display().to_string(),
            name: text(abs.file_name()),
            stem: text(abs.file_stem()),
            ext: text(abs.extension()),
            dir_name: text(dir.file_name()),
        }
    }

    fn get(&self, c: u8) -> Option<String> {
        Some(match c {
            b'd' => self.dir.clone(),
            b'p' => self.path.clone(),
            b's' => self.name.clone(),
            b'n' => self.stem.clone(),
            b'e' => self.ext.clone(),
            b'c' => self.dir_name.clone(),
            b'%' => "%".to_string(),
            _ => return None,
        })
    }
}
