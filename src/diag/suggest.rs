//! "Did you mean …?" hints for misspelt names (unknown fields, unknown jobs, commands).
//!
//! One edit distance (`strsim`) shared by every parser, so HCL and JSON files suggest
//! corrections the same way. A candidate is suggested when it is within a third of the
//! word's length (at least 1, at most 3 edits); ties go to the candidate listed first.

/// The closest candidate to `word`, if one is close enough to be a likely typo.
///
/// Comparison is case-insensitive, so `Memory` suggests `memory`.
pub fn did_you_mean<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str> + 'a,
{
    let word_lc = word.to_lowercase();
    let limit = (word_lc.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, String)> = None;
    for cand in candidates {
        let cand = cand.as_ref();
        if cand == word {
            continue;
        }
        let d = distance(&word_lc, &cand.to_lowercase());
        if d <= limit && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, cand.to_string()));
        }
    }
    best.map(|(_, c)| c)
}

/// The hint every file uses for a misspelt name: "did you mean `memory`?".
pub fn hint<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str> + 'a,
{
    did_you_mean(word, candidates).map(|s| format!("did you mean `{s}`?"))
}

/// "did you mean `x`?" when one candidate is close, else the list of what exists
/// (`<noun>: a, b`), or that there is none.
pub fn hint_or_list<I, S>(word: &str, candidates: I, noun: &str) -> String
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<str>,
{
    if let Some(h) = hint(word, candidates.clone()) {
        return h;
    }
    let all: Vec<String> = candidates.into_iter().map(|c| c.as_ref().to_string()).collect();
    if all.is_empty() { format!("there are no {noun} yet") } else { format!("{noun}: {}", all.join(", ")) }
}

/// Edit distance over characters: insert, delete, substitute and swapping two neighbours
/// each cost 1 (optimal string alignment). Swapped letters are the most common typo
/// (`wbe` for `web`), and plain Levenshtein counts them as two edits, too many for a short
/// name's limit.
pub fn distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("memroy", "memory"), 1);
        assert_eq!(distance("wbe", "web"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_close_names_only() {
        let fields = ["host", "hostname", "labels", "memory", "cpu", "tags", "position"];
        assert_eq!(did_you_mean("memroy", fields).as_deref(), Some("memory"));
        assert_eq!(did_you_mean("lables", fields).as_deref(), Some("labels"));
        assert_eq!(did_you_mean("Host", fields).as_deref(), Some("host"));
        assert_eq!(did_you_mean("cpus", fields).as_deref(), Some("cpu"));
        assert_eq!(did_you_mean("zzzzzz", fields), None);
        assert_eq!(did_you_mean("x", ["y"]).as_deref(), Some("y"));
        assert_eq!(did_you_mean("wbe", ["db", "web"]).as_deref(), Some("web"));
        assert_eq!(did_you_mean("port_mn", ["port_min", "port_max"]).as_deref(), Some("port_min"));
        assert_eq!(did_you_mean("anything", Vec::<String>::new()), None);
        let settings = ["max_versions", "job_config_selector"];
        assert_eq!(did_you_mean("max_version", settings).as_deref(), Some("max_versions"));
        assert_eq!(did_you_mean("job_config_selecter", settings).as_deref(), Some("job_config_selector"));
        assert_eq!(did_you_mean("colour", settings), None);
        assert_eq!(hint("jobs", ["job"]).as_deref(), Some("did you mean `job`?"));
    }
}
