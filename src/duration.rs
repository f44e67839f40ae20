//! Durations as kubectl reads and writes them: [`parse_duration`] for the
//! flags (`--timeout`, `--request-timeout`) and [`human_duration`], the one
//! way a duration is written in messages: Go's units, largest first, `1h`,
//! `2m`, `1m30s`, `5s`, `500ms`.
//!
//! Every sentence that names a duration (`not complete after 5m
//! (--timeout)`, `did not answer within 50ms (--request-timeout)`) uses
//! [`human_duration`], so the same flag value reads the same in every verb
//! and can be pasted back into the flag: `--timeout 1m30s`. Zero parts are
//! left out (`2m`, not Go's `2m0s`); a duration that is not a whole number of
//! seconds is written in milliseconds, the flag's finest unit.

use std::time::Duration;

/// Parse kubectl's duration syntax: a bare integer means seconds, otherwise
/// Go duration text such as `500ms`, `30s`, `1m30s`, `1.5h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is required, such as 30s, 1m or 1h".to_string());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {rest:?}"
            ));
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| {
            format!(
                "invalid duration {text:?}: {:?} is not a number",
                &rest[..number_len]
            )
        })?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m or h)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {text:?}"))
}

/// `1h`, `2m`, `1m30s`, `1h5s`, `5s`, `0s`, `1500ms`.
pub fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 != 0 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || text.is_empty() {
        text.push_str(&format!("{seconds}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_and_seconds_are_written_as_kubectl_writes_them() {
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2m");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn hours_lead_and_zero_parts_are_left_out() {
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human_duration(Duration::from_secs(3605)), "1h5s");
        assert_eq!(human_duration(Duration::from_secs(3661)), "1h1m1s");
    }

    #[test]
    fn a_fraction_of_a_second_is_written_in_milliseconds() {
        assert_eq!(human_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human_duration(Duration::from_micros(500_400)), "500ms");
    }

    #[test]
    fn what_is_written_parses_back_to_the_same_duration() {
        for millis in [50, 1500, 5_000, 90_000, 120_000, 3_605_000, 5_400_000] {
            let duration = Duration::from_millis(millis);
            let text = human_duration(duration);
            assert_eq!(parse_duration(&text), Ok(duration), "{text}");
        }
    }
}
