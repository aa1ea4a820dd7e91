//! Alarm episodes: one signal's flags close together taken as one event. A spike the
//! model flags, and the step after it, are one alarm to whoever answers it; a sensor stuck
//! for a week is one alarm, not 166 flags.

use super::ScoredValue;

/// The join `recur detect` and `recur stream --flag` use unless told: a signal's flags at
/// most 3 steps apart are one episode (a spike and the step after it, flagged as its
/// detector reads it back, are one; 1,743 flags on Beijing are 366 episodes).
pub const JOIN: usize = 3;

/// Values of one target of one entity flagged above a threshold ([`ScoredValue::is_flagged`]),
/// each within `join` steps of the flagged value before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode {
    /// The target (an index into the run's targets) and the entity (into the data's).
    pub target: usize,
    pub entity: usize,
    /// Its first and last flagged grid steps (it spans `first..=last`).
    pub first: usize,
    pub last: usize,
    /// The values flagged in it, those the model flagged and those the flatline rule did
    /// (a value both flag counts in each).
    pub flagged: usize,
    pub by_model: usize,
    pub by_flatline: usize,
    /// Its strongest value: the larger of the model's surprise and the flatline rule's
    /// score, and that value's grid step.
    pub peak: f32,
    pub peak_step: usize,
}

impl Episode {
    /// The grid steps it spans, flagged or not.
    pub fn steps(&self) -> usize {
        self.last - self.first + 1
    }
}

/// Episodes as they happen, for a stream: a target's flag begins an episode unless its last
/// flag was at most `join` steps before ([`episodes`] joins offline by it too).
#[derive(Clone, Debug)]
pub struct EpisodeTracker {
    join: usize,
    /// Each target's last flagged step.
    last: Vec<Option<usize>>,
}

impl EpisodeTracker {
    pub fn new(join: usize) -> EpisodeTracker {
        EpisodeTracker { join, last: Vec::new() }
    }

    /// The steps two flags may lie apart and be one episode.
    pub fn join(&self) -> usize {
        self.join
    }

    /// Per target, its last flagged step (none yet: `None`, or no entry).
    pub(super) fn last_flags(&self) -> &[Option<usize>] {
        &self.last
    }

    /// Goes on from `last` ([`EpisodeTracker::last_flags`]) after `steps` steps: whether it
    /// fits (no flag at a step not yet fed); if not, nothing changes.
    pub(super) fn restore_last_flags(&mut self, last: &[Option<usize>], steps: usize) -> bool {
        if last.iter().flatten().any(|&k| k >= steps) {
            return false;
        }
        self.last = last.to_vec();
        true
    }

    /// A flag of `target` at `step` (steps in order): whether it begins an episode.
    pub fn begins(&mut self, target: usize, step: usize) -> bool {
        if target >= self.last.len() {
            self.last.resize(target + 1, None);
        }
        let begins = self.last[target].is_none_or(|last| step.saturating_sub(last) > self.join);
        self.last[target] = Some(step);
        begins
    }
}

/// The episodes of `scored`'s values flagged above `threshold`: a target's flagged values
/// of one entity (`entity_of` a grid step), each at most `join` steps after the flagged
/// value before it, are one episode (`join` 1: only flags on consecutive steps). Ordered by
/// first step, then target.
pub fn episodes(
    scored: &[ScoredValue],
    threshold: f32,
    join: usize,
    entity_of: impl Fn(usize) -> usize,
) -> Vec<Episode> {
    let mut flagged: Vec<&ScoredValue> = scored.iter().filter(|v| v.is_flagged(threshold)).collect();
    flagged.sort_by_key(|v| (v.step, v.target));
    let targets = flagged.iter().map(|v| v.target + 1).max().unwrap_or(0);
    let mut tracker = EpisodeTracker::new(join);
    // each target's episode under way, an index into `out`
    let (mut out, mut open): (Vec<Episode>, Vec<usize>) = (Vec::new(), vec![0; targets]);
    let mut entity = None;
    for v in flagged {
        if entity != Some(entity_of(v.step)) {
            entity = Some(entity_of(v.step));
            tracker = EpisodeTracker::new(join);
        }
        let score = v.surprise.max(v.flatline);
        if tracker.begins(v.target, v.step) {
            open[v.target] = out.len();
            out.push(Episode {
                target: v.target,
                entity: entity_of(v.step),
                first: v.step,
                last: v.step,
                flagged: 0,
                by_model: 0,
                by_flatline: 0,
                peak: score,
                peak_step: v.step,
            });
        }
        let e = &mut out[open[v.target]];
        e.last = v.step;
        e.flagged += 1;
        e.by_model += usize::from(v.surprise > threshold);
        e.by_flatline += usize::from(v.flatline > threshold);
        if score > e.peak {
            (e.peak, e.peak_step) = (score, v.step);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::scored_value;
    use super::*;

    #[test]
    fn a_signals_flags_within_join_steps_are_one_episode_and_entities_or_signals_never_share_one() {
        // synthetic scores, episodes by hand: target 0 flagged (> 4) at steps 3, 4, 6 and
        // 10; target 1 at 4 (by the flatline rule) and 5 (by both); steps from 8 on are
        // the second entity's
        let v = |step, target, model, flatline| scored_value(step, target, [model, 9.0, 9.0, flatline]);
        let scored = [
            v(2, 0, 3.9, 0.0),
            v(3, 0, 5.0, 0.0),
            v(4, 0, 4.5, 0.0),
            v(4, 1, 1.0, 6.0),
            v(5, 0, 0.0, 0.0),
            v(5, 1, 4.2, 4.1),
            v(6, 0, 7.0, 0.0),
            v(7, 1, 0.0, 0.0),
            v(10, 0, 4.1, 0.0),
        ];
        let entity_of = |step: usize| usize::from(step >= 8);
        let joined = episodes(&scored, 4.0, 2, entity_of);
        let e = |target, entity, (first, last), (flagged, by_model, by_flatline), (peak, peak_step)| Episode {
            target,
            entity,
            first,
            last,
            flagged,
            by_model,
            by_flatline,
            peak,
            peak_step,
        };
        assert_eq!(
            joined,
            [
                e(0, 0, (3, 6), (3, 3, 0), (7.0, 6)),
                e(1, 0, (4, 5), (2, 1, 2), (6.0, 4)),
                e(0, 1, (10, 10), (1, 1, 0), (4.1, 10)),
            ]
        );
        assert_eq!(joined[0].steps(), 4);
        // joining only consecutive flags splits target 0's first episode at the quiet step 5
        let apart = episodes(&scored, 4.0, 1, entity_of);
        assert_eq!(
            apart.iter().map(|e| (e.target, e.first, e.last)).collect::<Vec<_>>(),
            [(0, 3, 4), (1, 4, 5), (0, 6, 6), (0, 10, 10)]
        );
        // however far `join` reaches, an entity's episode ends with its steps
        assert_eq!(episodes(&scored, 4.0, 100, entity_of).len(), 3);
        assert!(episodes(&scored, 9.0, 2, entity_of).is_empty(), "persistence and the level raise no alarm");
        let flags = scored.iter().filter(|v| v.is_flagged(4.0)).count();
        assert_eq!(joined.iter().map(|e| e.flagged).sum::<usize>(), flags);
        // live, the same flags in step order begin the same episodes (one stream, one entity)
        let mut live = EpisodeTracker::new(2);
        let begun = [(3, 0), (4, 0), (4, 1), (5, 1), (6, 0), (10, 0)].map(|(step, t)| live.begins(t, step));
        assert_eq!(begun, [true, false, true, false, false, true]);
    }

    #[test]
    fn on_random_flags_every_flag_lies_in_one_episode_and_episodes_are_as_joined() {
        // synthetic: 3 targets over 2 entities of 150 steps each, scores drawn so that
        // about one value in five is flagged, by either detector; joins 1 to 6
        let mut rng = crate::rng::Rng::new(11);
        for case in 0..40 {
            let (threshold, join) = (4.0, 1 + case % 6);
            let entity_of = |step: usize| usize::from(step >= 150);
            let score = |rng: &mut crate::rng::Rng| if rng.uniform() < 0.12 { 4.0 + rng.uniform() as f32 } else { 3.0 };
            let mut scored: Vec<ScoredValue> = Vec::new();
            for (step, t) in (0..300).flat_map(|step| (0..3).map(move |t| (step, t))) {
                if rng.uniform() < 0.9 {
                    let (model, flatline) = (score(&mut rng), score(&mut rng));
                    scored.push(scored_value(step, t, [model, 9.0, 9.0, flatline]));
                }
            }
            let found = episodes(&scored, threshold, join, entity_of);
            let flags: Vec<&ScoredValue> = scored.iter().filter(|v| v.is_flagged(threshold)).collect();
            assert_eq!(found.iter().map(|e| e.flagged).sum::<usize>(), flags.len());
            for v in &flags {
                let holding: Vec<&Episode> =
                    found.iter().filter(|e| e.target == v.target && e.first <= v.step && v.step <= e.last).collect();
                assert_eq!(holding.len(), 1, "case {case}: step {} target {}", v.step, v.target);
                assert_eq!(holding[0].entity, entity_of(v.step));
            }
            for e in &found {
                let inside: Vec<&&ScoredValue> =
                    flags.iter().filter(|v| v.target == e.target && (e.first..=e.last).contains(&v.step)).collect();
                assert_eq!((inside[0].step, inside[inside.len() - 1].step), (e.first, e.last));
                assert!(inside.windows(2).all(|w| w[1].step - w[0].step <= join), "case {case}: {e:?}");
                let peak = inside.iter().map(|v| v.surprise.max(v.flatline)).fold(f32::MIN, f32::max);
                assert_eq!(e.peak, peak);
                assert_eq!(entity_of(e.first), entity_of(e.last));
                // the next episode of its target and entity begins more than `join` after it
                let next = found.iter().filter(|o| o.target == e.target && o.entity == e.entity && o.first > e.last);
                assert!(next.map(|o| o.first).min().is_none_or(|first| first - e.last > join), "case {case}: {e:?}");
            }
            // live, entity by entity, the tracker begins as many
            let begun: usize = (0..2)
                .map(|entity| {
                    let mut live = EpisodeTracker::new(join);
                    flags
                        .iter()
                        .filter(|v| entity_of(v.step) == entity)
                        .filter(|v| live.begins(v.target, v.step))
                        .count()
                })
                .sum();
            assert_eq!(begun, found.len());
        }
    }
}
