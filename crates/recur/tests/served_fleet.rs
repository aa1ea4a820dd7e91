//! `serve::Fleet`, the library's live service (what `recur stream` runs), on a run trained
//! on the bundled PhysioNet stays: a feed of several stays interleaved row by row answers
//! and watches each stay as it would be alone; fed in two parts with its state carried
//! between them as JSON, as the whole feed; a state that does not fit is refused and the
//! fleet is left as it was; rows that cannot be read are named by column or stay, and a
//! line refused, however damaged, leaves no trace.

use std::collections::BTreeMap;

use recur::run::{load_data, run, RunConfig};
use recur::serve::{FeedLayout, FeedStep, Fleet, FleetState, ServedRun, WatchRule};
use recur::tasks::anomaly::WatchStep;
use recur::tasks::{LiveAnswer, PredictionTask};
use recur::Rng;

/// Per served step: the stay, its time, the values fed (the watch's withheld as gaps), the
/// answer and the watch's scores.
type Served = (String, String, Vec<Option<f32>>, LiveAnswer, Option<WatchStep>);

const RULE: WatchRule = WatchRule { threshold: 3.0, join: 3 };

/// `steps` through `fleet`, as served.
fn serve(fleet: &mut Fleet, steps: Vec<FeedStep>) -> Vec<Served> {
    steps
        .iter()
        .map(|step| {
            let served = fleet.serve(step, 1, 0).unwrap();
            let entity = fleet.entity_name(step.entity).to_string();
            (entity, step.time.clone().unwrap(), served.fed, served.answer, served.watched)
        })
        .collect()
}

/// `lines` of a feed laid out as `layout` through `fleet`, then its end (`finish`) unless
/// the feed goes on.
fn feed(fleet: &mut Fleet, layout: &FeedLayout, lines: &[&str], finish: bool) -> Vec<Served> {
    let mut steps = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        steps.extend(fleet.read_line(layout, line).unwrap_or_else(|e| panic!("{}", e.at("feed", n + 2))));
    }
    if finish {
        steps.extend(fleet.finish());
    }
    serve(fleet, steps)
}

fn configs() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// A run folder of `configs/physionet-prediction-stream.toml` trained for 3 epochs, with
/// the alarm scales `recur detect --alarm-rate 0.01` keeps (the flatline rule's with them).
fn physionet_run() -> tempfile::TempDir {
    let mut config = RunConfig::load(configs().join("physionet-prediction-stream.toml")).unwrap();
    config.train.epochs = 3;
    let data = load_data(&config.data, &configs()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut outcome = run(&config, &data, Some(dir.path()), false).unwrap();
    recur::report::write_run_folder(dir.path(), &config, &mut outcome, &data).unwrap();
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    task.alarms_to_keep(&outcome.model, 0.01, 4.0).unwrap().save_to_run(dir.path()).unwrap();
    dir
}

/// Four of the bundled PhysioNet file's test stays.
const STAYS: [&str; 4] = ["133549", "133551", "133552", "133560"];

/// The rows of the [`STAYS`] in the PhysioNet file's `text`, interleaved by their time
/// since admission (each stay's in its own order).
fn interleaved_stays(text: &str) -> Vec<&str> {
    let mut rows: Vec<&str> = text.lines().skip(1).filter(|l| STAYS.iter().any(|s| l.starts_with(s))).collect();
    let minutes = |line: &str| {
        let (h, m) = line.split(',').nth(1).unwrap().split_once(':').unwrap();
        h.parse::<u32>().unwrap() * 60 + m.parse::<u32>().unwrap()
    };
    rows.sort_by_key(|l| minutes(l));
    rows
}

#[test]
fn a_fleet_serves_each_stay_as_alone_and_goes_on_from_its_state() {
    let dir = physionet_run();
    let served = ServedRun::open(dir.path()).unwrap();
    let text = std::fs::read_to_string(configs().join("../data/physionet/set-a-first400.csv")).unwrap();
    let header = text.lines().next().unwrap();
    let rows = interleaved_stays(&text);
    let stays = STAYS;

    let mut fleet = Fleet::new(&served, Some(RULE)).unwrap();
    let layout = fleet.layout(header, false).unwrap();
    assert_eq!(layout.entity_column(), Some("record_id"));
    assert!(fleet.has_flatline(), "the kept alarms bring the flatline rule");
    let together = feed(&mut fleet, &layout, &rows, true);
    assert_eq!(fleet.entity_count(), stays.len());
    let alarms: usize = together.iter().filter_map(|s| s.4.as_ref()).map(|w| w.new_alarms.len()).sum();
    let withheld = together.iter().filter(|s| s.4.as_ref().is_some_and(|w| w.flagged.iter().any(|&f| f))).count();
    println!("{} steps of {} stays, {alarms} alarms, {withheld} steps flagged", together.len(), stays.len());
    assert!(together.len() > 100 && alarms > 0, "{} steps, {alarms} alarms", together.len());
    assert_eq!(fleet.feed_counts().unwrap().iter().map(|c| c.episodes).sum::<usize>(), alarms);

    // each stay alone, through a fleet of its own
    let mut by_stay: BTreeMap<&str, Vec<Served>> = BTreeMap::new();
    for stay in stays {
        let own: Vec<&str> = rows.iter().copied().filter(|l| l.starts_with(stay)).collect();
        let mut alone = Fleet::new(&served, Some(RULE)).unwrap();
        by_stay.insert(stay, feed(&mut alone, &layout, &own, true));
    }
    for (stay, alone) in &by_stay {
        let mixed: Vec<&Served> = together.iter().filter(|s| s.0 == *stay).collect();
        assert_eq!(mixed, alone.iter().collect::<Vec<_>>(), "stay {stay}: served among the others as alone");
    }

    // in two parts, the state between them as JSON: the whole feed's steps
    let half = rows.len() / 2;
    let mut first = Fleet::new(&served, Some(RULE)).unwrap();
    let mut resumed = feed(&mut first, &layout, &rows[..half], false);
    let json = serde_json::to_string(&first.state()).unwrap();
    let state: FleetState = serde_json::from_str(&json).unwrap();
    assert_eq!(state.rows, half as u64);
    let mut second = Fleet::new(&served, Some(RULE)).unwrap();
    second.restore(state.clone()).unwrap();
    assert_eq!(second.rows(), (half as u64, half as u64));
    resumed.extend(feed(&mut second, &layout, &rows[half..], true));
    assert_eq!(resumed, together, "fed in two parts as at once");
    let episodes: usize = second.feed_counts().unwrap().iter().map(|c| c.episodes).sum();
    assert!(episodes > 0 && episodes < alarms, "the second part's own episodes: {episodes} of {alarms}");

    // a stay that leaves after its last row: its last hour answered as at the feed's end,
    // the stay forgotten, the others answered as before, its alarms still counted
    let last_row = |stay: &str| rows.iter().rposition(|l| l.starts_with(stay)).unwrap();
    let leaving = stays[0];
    let mut fleet = Fleet::new(&served, Some(RULE)).unwrap();
    let mut answers = feed(&mut fleet, &layout, &rows[..=last_row(leaving)], false);
    let left = fleet.leave(leaving, 1, 0).unwrap();
    assert_eq!(left.len(), 1, "its open hour");
    answers.extend(
        left.into_iter().map(|(step, s)| (leaving.to_string(), step.time.unwrap(), s.fed, s.answer, s.watched)),
    );
    assert_eq!(fleet.entity_count(), stays.len() - 1);
    assert!(fleet.state().entities.iter().all(|e| e.name != leaving), "not kept in the state");
    assert!(fleet.leave(leaving, 1, 0).unwrap().is_empty(), "gone");
    answers.extend(feed(&mut fleet, &layout, &rows[last_row(leaving) + 1..], true));
    let by_stay = |a: &[Served]| -> BTreeMap<String, Vec<Served>> {
        let mut m: BTreeMap<String, Vec<Served>> = BTreeMap::new();
        a.iter().for_each(|s| m.entry(s.0.clone()).or_default().push(s.clone()));
        m
    };
    assert_eq!(by_stay(&answers), by_stay(&together), "each stay's answers as without the leaving");
    let episodes: usize = fleet.feed_counts().unwrap().iter().map(|c| c.episodes).sum();
    assert_eq!(episodes, alarms, "the stay that left still counted");

    // states that do not fit are refused, the fleet left as it was
    let mut fresh = Fleet::new(&served, Some(RULE)).unwrap();
    let mut other_signals = state.clone();
    other_signals.signals.swap(0, 1);
    let err = fresh.restore(other_signals).unwrap_err().to_string();
    assert!(err.contains("the state of a stream of the signals"), "{err}");
    let mut other_model = state.clone();
    other_model.model = "0123456789abcdef".into();
    let err = fresh.restore(other_model).unwrap_err().to_string();
    assert!(err.contains("another model") && err.contains("retrained"), "{err}");
    let mut cut = serde_json::to_value(&state).unwrap();
    let last = cut["entities"].as_array().unwrap().len() - 1;
    let stay = cut["entities"][last]["name"].as_str().unwrap().to_string();
    let pending = &mut cut["entities"][last]["aligner"]["pending"]["sums"];
    pending.as_array_mut().unwrap().pop();
    let err = fresh.restore(serde_json::from_value(cut).unwrap()).unwrap_err().to_string();
    assert!(err.contains(&format!("entity `{stay}`: rows of 13 signals pending; the run reads 14")), "{err}");
    assert_eq!(fresh.entity_count(), 0, "a refused state restores no entity");
    assert_eq!(feed(&mut fresh, &layout, &rows, true), together, "and the fleet serves as a fresh one");
    let err = fresh.restore(state).unwrap_err().to_string();
    assert!(err.contains("restore first"), "{err}");

    // rows that cannot be read: the column, or the stay whose rows come out of order
    let mut fleet = Fleet::new(&served, Some(RULE)).unwrap();
    fleet.read_line(&layout, "133549,1:00,HR,80").unwrap();
    let err = fleet.read_line(&layout, "133549,0:30,HR,81").unwrap_err();
    assert_eq!(
        err.at("feed.csv", 3),
        "feed.csv: line 3 (entity `133549`): decreasing time (rows must come in time order)"
    );
    let err = fleet.read_line(&layout, "133549,1:30,HR,eighty").unwrap_err();
    assert_eq!((err.column.as_deref(), err.entity.as_deref()), (Some("value"), None));
    assert!(err.at("feed.csv", 4).starts_with("feed.csv: line 4, column `value`: `eighty`"), "{err}");
    let err = fleet.read_line(&layout, "133549,1:30,HR").unwrap_err();
    assert_eq!(err.to_string(), ": 3 fields, the header has 4");
    assert_eq!(fleet.layout("record_id,time,value", false).err().unwrap().why, "no column `HR`");
}

/// A run trained in a time zone whose clocks change (`data.time_zone`, here central
/// Europe's POSIX rule over the station's hours, read as UTC) keeps the zone in its folder:
/// served from the folder alone over the night the clocks went forward (2014-03-30, 01:00
/// UTC), its forecasts are those of the library's stream over the training data, whose
/// calendar inputs read local 03:00 an hour after local 01:00.
#[test]
fn a_time_zone_travels_with_the_run_across_a_change_of_the_clocks() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut config = RunConfig::load(configs.join("beijing-prediction.toml")).unwrap();
    config.train.epochs = 1;
    config.train.max_batches_per_epoch = 3;
    config.data.calendar = vec![recur::data::CalendarCycle::Day];
    config.data.time_zone = "CET-1CEST,M3.5.0,M10.5.0/3".into();
    let data = load_data(&config.data, &configs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut outcome = run(&config, &data, Some(dir.path()), false).unwrap();
    recur::report::write_run_folder(dir.path(), &config, &mut outcome, &data).unwrap();
    let kept = std::fs::read_to_string(dir.path().join(recur::data::SCALER_FILE)).unwrap();
    assert!(kept.contains("CET-1CEST,M3.5.0,M10.5.0/3"), "the zone kept beside the scaler");

    // the calendar's local time: 00:00 UTC is 01:00 local, 01:00 UTC already 03:00
    let change = 1_396_141_200; // 2014-03-30 01:00 UTC
    let local = |t: i64| data.calendar.local(t).rem_euclid(86_400) / 3600;
    assert_eq!([local(change - 3600), local(change)], [1, 3]);

    let text = std::fs::read_to_string(configs.join("../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv"))
        .unwrap()
        .replace('"', "");
    let first = text.lines().position(|l| l.contains(",2014,3,29,0,")).unwrap();
    let rows: Vec<&str> = text.lines().skip(first).take(48).collect();
    let k0 = first - 1;
    assert_eq!(data.step_time(k0), change - 25 * 3600);

    let served = ServedRun::open(dir.path()).unwrap();
    let mut fleet = Fleet::new(&served, None).unwrap();
    let layout = fleet.layout(text.lines().next().unwrap(), false).unwrap();
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let mut offline = task.stream(&outcome.model).unwrap();
    offline.at(data.step_time(k0));
    for (n, row) in rows.iter().enumerate() {
        let steps = fleet.read_line(&layout, row).unwrap();
        let LiveAnswer::Forecast(answer) = fleet.serve(&steps[0], 1, 0).unwrap().answer else { panic!("a forecast") };
        assert_eq!(answer.values, offline.step(&data.original_step(k0 + n)).unwrap(), "hour {n}");
    }
}

/// `row` (`record_id,time,parameter,value`) damaged one of the ways a feed is: a value, a
/// time or a whole line that cannot be read, a field missing or one too many, a late time,
/// an unbalanced quote, bytes that are no text a historian writes.
fn damaged(rng: &mut Rng, row: &str) -> String {
    let mut fields: Vec<String> = row.split(',').map(String::from).collect();
    let pick = |rng: &mut Rng, of: &[&str]| of[rng.below(of.len())].to_string();
    match rng.below(9) {
        0 => fields[3] = pick(rng, &["x", "1e400", "NaN?", "--5", "0x10", "½", ""]),
        1 => {
            fields.pop();
        }
        2 => fields.push("extra".into()),
        3 => fields[1] = pick(rng, &["99:99", "-1:00", "", "1:2:3", "24h", "ninety", "1:5"]),
        4 => fields[1] = "0:00".into(),
        5 => return (0..rng.below(40)).map(|_| char::from(32 + rng.below(95) as u8)).collect(),
        6 => fields[0].insert(0, '"'),
        7 => return "\u{feff}\u{0}é,,,".into(),
        _ => fields[2] = pick(rng, &["HR ", "hr", "Ｈ", ""]),
    }
    fields.join(",")
}

/// Whatever a line holds, reading it does not panic, and a line the fleet refuses leaves no
/// trace: the real stays' rows with damaged lines among them (a quarter of the rows, four
/// seeds) answer and alarm as the rows with only the damaged lines the fleet took.
#[test]
fn a_line_the_fleet_refuses_leaves_no_trace() {
    let dir = physionet_run();
    let served = ServedRun::open(dir.path()).unwrap();
    let text = std::fs::read_to_string(configs().join("../data/physionet/set-a-first400.csv")).unwrap();
    let header = text.lines().next().unwrap();
    let rows = interleaved_stays(&text);
    let (mut refused, mut taken) = (0, 0);
    for seed in 0..4 {
        let mut rng = Rng::new(seed);
        let mut damaged_feed = Fleet::new(&served, Some(RULE)).unwrap();
        let mut clean_feed = Fleet::new(&served, Some(RULE)).unwrap();
        let layout = damaged_feed.layout(header, false).unwrap();
        let (mut answers, mut clean_answers) = (Vec::new(), Vec::new());
        for row in &rows {
            if rng.below(4) == 0 {
                let line = damaged(&mut rng, row);
                if let Ok(steps) = damaged_feed.read_line(&layout, &line) {
                    // a damaged line that still reads as a row is one: the clean feed takes it too
                    answers.extend(serve(&mut damaged_feed, steps));
                    let steps = clean_feed.read_line(&layout, &line).unwrap();
                    clean_answers.extend(serve(&mut clean_feed, steps));
                    taken += 1;
                } else {
                    refused += 1;
                }
            }
            for (fleet, out) in [(&mut damaged_feed, &mut answers), (&mut clean_feed, &mut clean_answers)] {
                let steps = fleet.read_line(&layout, row).unwrap();
                out.extend(serve(fleet, steps));
            }
        }
        for (fleet, out) in [(&mut damaged_feed, &mut answers), (&mut clean_feed, &mut clean_answers)] {
            let steps = fleet.finish();
            out.extend(serve(fleet, steps));
        }
        assert_eq!(answers, clean_answers, "seed {seed}");
        assert!(answers.len() > 150, "seed {seed}: {} steps", answers.len());
    }
    println!("{refused} damaged lines refused, {taken} read as rows");
    assert!(refused > 100 && taken > 5, "{refused} refused, {taken} taken");
}
