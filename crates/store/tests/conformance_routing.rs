//! Conformance suite: routing and agent stress — the three strategies, capacity, skills,
//! pauses and availability, the queue and assign-next, stress facts, flags, supervisor
//! notifications and automatic pauses — on SQLite and PostgreSQL alike.
//!
//! Cases reach a team's queue by a transfer from no team and are then routed through
//! `route_case_now` (the hook's own-transaction wrapper); when case creation and
//! transfers call the hook themselves, the transfer has already routed them and the
//! helpers read the assignee from the case, so the tests hold either way.

mod common;

use common::*;
use kefu_domain::Labelled;
use kefu_domain::access::Role;
use kefu_domain::cases::*;
use kefu_domain::complaints::*;
use kefu_domain::routing::*;
use kefu_store::audit::AuditFilter;
use kefu_store::cases::{Case, NewTransfer, StatusChange};
use kefu_store::complaints::NewComplaint;
use kefu_store::customers::Customer;
use kefu_store::promises::Notification;
use kefu_store::routing::*;
use kefu_store::users::{NewTeam, NewUser, User};
use kefu_store::{Store, StoreError};

kefu_testkit::conformance!(
    round_robin_takes_turns,
    least_loaded_picks_the_lightest_share,
    skills_are_required_and_skill_based_prefers_the_closest_match,
    capacity_is_respected_and_a_full_team_queues,
    paused_unavailable_and_profileless_agents_are_skipped,
    auto_assign_off_leaves_cases_in_the_queue,
    assign_next_routes_the_oldest_case_someone_can_take,
    concurrent_assignments_respect_capacity,
    the_queue_lists_unassigned_cases_oldest_first,
    pause_and_resume_are_audited_and_notified,
    availability_tracks_continuous_duty,
    stress_facts_come_from_the_database,
    the_sweep_flags_once_and_notifies_supervisors,
    severe_stress_pauses_routing_when_the_team_says_so,
    bad_input_is_refused_and_nothing_is_written,
    settings_and_profiles_check_versions,
);

// ---------------------------------------------------------------------------------------
// Helpers

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// A team with its members; returns the team's public id and the users.
async fn team_with(store: &Store, name: &str, members: &[(&str, Role)]) -> (String, Vec<User>) {
    let team = store
        .create_team(
            &cli(),
            NewTeam {
                name: name.into(),
                description: None,
            },
        )
        .await
        .expect("team");
    let mut users = Vec::new();
    for (email, role) in members {
        users.push(
            store
                .create_user(
                    &cli(),
                    NewUser {
                        email: (*email).into(),
                        name: Some(email.split('@').next().unwrap_or(email).into()),
                        role: *role,
                        password: None,
                        team_id: Some(team.id.clone()),
                        locale: None,
                    },
                )
                .await
                .expect("member"),
        );
    }
    (team.id, users)
}

fn settings(strategy: Strategy, auto_assign: bool) -> TeamRoutingInput {
    TeamRoutingInput {
        strategy,
        auto_assign,
        auto_pause_on_severe: None,
        kind_skills: None,
        stress: None,
    }
}

async fn route_by(store: &Store, team: &str, strategy: Strategy) -> TeamRouting {
    store
        .set_team_routing(&cli(), team, settings(strategy, true), None)
        .await
        .expect("team routing")
}

/// An agent with a capacity and skills, available.
async fn ready(store: &Store, agent: &User, capacity: i64, skills: &[&str]) -> AgentProfile {
    store
        .set_agent_profile(
            &cli(),
            &agent.id,
            AgentProfileInput {
                capacity,
                skills: skills.iter().map(|s| s.to_string()).collect(),
            },
            None,
        )
        .await
        .expect("profile");
    store
        .set_availability(&actor_of(agent), &agent.id, Availability::Available)
        .await
        .expect("available")
}

/// A case of no team, optionally with required skills.
async fn loose_case(store: &Store, customer: &Customer, subject: &str, skills: &[&str]) -> Case {
    loose_case_of(store, customer, CaseKind::Consultation, subject, skills).await
}

async fn loose_case_of(
    store: &Store,
    customer: &Customer,
    kind: CaseKind,
    subject: &str,
    skills: &[&str],
) -> Case {
    let case = open_case(store, &cli(), customer, kind, subject).await;
    if !skills.is_empty() {
        store
            .set_case_skills(
                &cli(),
                &case.id,
                CaseSkillsInput {
                    skills: skills.iter().map(|s| s.to_string()).collect(),
                },
            )
            .await
            .expect("case skills");
    }
    case
}

/// Moves a case into a team's queue and routes it: the agent it went to, if any.
async fn route_into(store: &Store, case: &Case, team: &str) -> Option<String> {
    let moved = store
        .transfer_case(
            &cli(),
            &case.id,
            NewTransfer {
                team_id: Some(team.into()),
                assignee_id: None,
                reason: "进入团队队列".into(),
            },
            None,
        )
        .await
        .expect("transfer into the team");
    match moved.assignee_id {
        Some(agent) => Some(agent),
        None => store.route_case_now(&case.id).await.expect("route"),
    }
}

/// A new case routed into a team: the case and its agent.
async fn incoming(
    store: &Store,
    customer: &Customer,
    team: &str,
    subject: &str,
    skills: &[&str],
) -> (Case, Option<String>) {
    let case = loose_case(store, customer, subject, skills).await;
    let agent = route_into(store, &case, team).await;
    (case, agent)
}

async fn solve(store: &Store, case: &Case) {
    store
        .change_case_status(
            &cli(),
            &case.id,
            StatusChange {
                status: CaseStatus::Solved,
                reason: None,
            },
            None,
        )
        .await
        .expect("solve");
}

async fn notifications_of(store: &Store, user: &User) -> Vec<Notification> {
    walk(100, async |p| {
        store.notifications(user.key, false, &p).await
    })
    .await
}

async fn notices(store: &Store, user: &User, kind: &str) -> Vec<Notification> {
    notifications_of(store, user)
        .await
        .into_iter()
        .filter(|n| n.kind == kind)
        .collect()
}

fn complaint(behaviour: Behaviour, subject: Option<&User>) -> NewComplaint {
    NewComplaint {
        severity: Severity::General,
        behaviour,
        purpose: Purpose::Criticism,
        cause: Cause::Service,
        fault_side: None,
        fault_detail: None,
        dissatisfaction: Dissatisfaction::Process,
        needs: None,
        key_points: "客户对服务态度不满".into(),
        validity: None,
        validity_reason: None,
        product: None,
        reputation_risk: None,
        subject_user_id: subject.map(|u| u.id.clone()),
    }
}

/// A complaint case assigned to `agent` whose customer behaves as said.
async fn complaint_for(
    store: &Store,
    customer: &Customer,
    agent: &User,
    behaviour: Behaviour,
    subject: Option<&User>,
) -> Case {
    let case = store
        .create_case(
            &cli(),
            kefu_store::cases::NewCase {
                assignee_id: Some(agent.id.clone()),
                ..new_case(customer, CaseKind::Complaint, "服务投诉")
            },
        )
        .await
        .expect("complaint case");
    store
        .record_complaint(&cli(), &case.id, complaint(behaviour, subject))
        .await
        .expect("record complaint");
    case
}

async fn assigned_case(store: &Store, customer: &Customer, agent: &User, subject: &str) -> Case {
    store
        .create_case(
            &cli(),
            kefu_store::cases::NewCase {
                assignee_id: Some(agent.id.clone()),
                ..new_case(customer, CaseKind::Consultation, subject)
            },
        )
        .await
        .expect("assigned case")
}

fn skill_names(skills: &[Skill]) -> Vec<&str> {
    skills.iter().map(Skill::as_str).collect()
}

// ---------------------------------------------------------------------------------------
// Strategies

async fn round_robin_takes_turns(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "一线",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
            ("c@example.com", Role::Agent),
        ],
    )
    .await;
    for agent in &agents {
        ready(&store, agent, 10, &[]).await;
    }
    route_by(&store, &team, Strategy::RoundRobin).await;
    let customer = person(&store, "李雷").await;
    let mut order = Vec::new();
    let mut cases = Vec::new();
    for i in 0..6 {
        let (case, agent) = incoming(&store, &customer, &team, &format!("咨询 {i}"), &[]).await;
        order.push(agent.expect("routed"));
        cases.push(case);
    }
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    assert_eq!(
        order,
        [ids.clone(), ids.clone()].concat(),
        "each agent in turn, all within one millisecond"
    );
    // The assignment is the case's, with the first owner, and audited as kefu's.
    let first = store.case(&cases[0].id).await.expect("case");
    assert_eq!(first.assignee_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(first.first_owner_id.as_deref(), Some(ids[0].as_str()));
    let audit = audit_of(&store, "case", &cases[0].id).await;
    let assign = audit
        .iter()
        .find(|e| e.action == "assign")
        .expect("an assign record");
    assert_eq!(assign.actor, "system");
    assert_eq!(
        assign.after.as_ref().expect("after")["strategy"],
        "round_robin"
    );
    let notes = notices(&store, &agents[0], "case_assigned").await;
    assert_eq!(notes.len(), 2);
    assert!(
        notes[0].message_zh.contains("已从队列分配给你"),
        "{notes:?}"
    );
    assert!(notes[0].message_en.contains("assigned to you"), "{notes:?}");
    // Routed cases count as the agents' load.
    let board = store.team_agents(&team).await.expect("agents");
    assert_eq!(
        board.iter().map(|p| p.open_load).collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    assert!(board.iter().all(|p| p.last_assigned_at.is_some()));
}

async fn least_loaded_picks_the_lightest_share(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "二线",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
            ("c@example.com", Role::Agent),
        ],
    )
    .await;
    let (a, b, c) = (&agents[0], &agents[1], &agents[2]);
    ready(&store, a, 10, &[]).await;
    ready(&store, b, 10, &[]).await;
    ready(&store, c, 4, &[]).await;
    route_by(&store, &team, Strategy::LeastLoaded).await;
    let customer = person(&store, "韩梅梅").await;
    // Loads: a 4/10, b 1/10, c 1/4, from cases assigned by hand.
    let mut a_cases = Vec::new();
    for i in 0..4 {
        a_cases.push(assigned_case(&store, &customer, a, &format!("a {i}")).await);
    }
    assigned_case(&store, &customer, b, "b").await;
    assigned_case(&store, &customer, c, "c").await;
    let mut order = Vec::new();
    for i in 0..3 {
        order.push(
            incoming(&store, &customer, &team, &format!("新 {i}"), &[])
                .await
                .1
                .expect("routed"),
        );
    }
    // b 10% → b 20% → (a 40%, b 30%, c 25%) c.
    assert_eq!(order, vec![b.id.clone(), b.id.clone(), c.id.clone()]);
    // Solved cases are no load: a drops to 20%, below b's 30% and c's 50%.
    solve(&store, &a_cases[0]).await;
    solve(&store, &a_cases[1]).await;
    let (_, agent) = incoming(&store, &customer, &team, "新 3", &[]).await;
    assert_eq!(agent.as_deref(), Some(a.id.as_str()));
}

async fn skills_are_required_and_skill_based_prefers_the_closest_match(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "技术支持",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
            ("c@example.com", Role::Agent),
        ],
    )
    .await;
    let (a, b, c) = (&agents[0], &agents[1], &agents[2]);
    ready(&store, a, 10, &["billing", "english"]).await;
    ready(&store, b, 10, &["billing"]).await;
    ready(&store, c, 10, &["english", "粤语"]).await;
    route_by(&store, &team, Strategy::SkillBased).await;
    let customer = person(&store, "Tom").await;
    let routed = async |subject: &str, skills: &[&str]| {
        incoming(&store, &customer, &team, subject, skills).await.1
    };
    // Only a has both; b is the closest match for billing alone; only c speaks 粤语.
    assert_eq!(
        routed("双语账单", &["billing", "English"]).await.as_deref(),
        Some(a.id.as_str())
    );
    assert_eq!(
        routed("账单", &["billing"]).await.as_deref(),
        Some(b.id.as_str())
    );
    assert_eq!(
        routed("粤语客户", &["粤语"]).await.as_deref(),
        Some(c.id.as_str())
    );
    // Nobody speaks French: the case waits, and says why.
    let (french, agent) = incoming(&store, &customer, &team, "法语", &["french"]).await;
    assert_eq!(agent, None);
    let routing = store.case_routing(&french.id).await.expect("routing");
    assert!(routing.queued);
    assert_eq!(routing.waiting_reason, Some(Unrouted::NoSkilledAgent));
    assert_eq!(skill_names(&routing.required_skills), vec!["french"]);
    // Round robin honours skills too: english goes to a or c, never to b.
    route_by(&store, &team, Strategy::RoundRobin).await;
    for i in 0..4 {
        let agent = routed(&format!("英语 {i}"), &["english"])
            .await
            .expect("routed");
        assert_ne!(agent, b.id, "b does not speak English");
    }
    // Skills by case kind: every technical case needs `network`, which nobody has yet.
    store
        .set_team_routing(
            &cli(),
            &team,
            TeamRoutingInput {
                kind_skills: Some(
                    [("technical_support".to_string(), vec!["network".to_string()])].into(),
                ),
                ..settings(Strategy::SkillBased, true)
            },
            None,
        )
        .await
        .expect("kind skills");
    let technical = loose_case_of(&store, &customer, CaseKind::TechnicalSupport, "断网", &[]).await;
    assert_eq!(route_into(&store, &technical, &team).await, None);
    let routing = store.case_routing(&technical.id).await.expect("routing");
    assert_eq!(skill_names(&routing.required_skills), vec!["network"]);
    assert!(routing.skills.is_empty(), "the case itself names no skill");
    // Teaching b the skill routes the waiting case at once.
    store
        .set_agent_profile(
            &cli(),
            &b.id,
            AgentProfileInput {
                capacity: 10,
                skills: vec!["billing".into(), "network".into()],
            },
            None,
        )
        .await
        .expect("learn network");
    let technical = store.case(&technical.id).await.expect("case");
    assert_eq!(technical.assignee_id.as_deref(), Some(b.id.as_str()));
    // The French case still waits.
    assert_eq!(
        store.case(&french.id).await.expect("case").assignee_id,
        None
    );
}

async fn capacity_is_respected_and_a_full_team_queues(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "售后",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Supervisor),
        ],
    )
    .await;
    let (a, b) = (&agents[0], &agents[1]);
    ready(&store, a, 1, &[]).await;
    ready(&store, b, 2, &[]).await;
    route_by(&store, &team, Strategy::RoundRobin).await;
    let customer = person(&store, "张三").await;
    let mut cases = Vec::new();
    let mut order = Vec::new();
    for i in 0..4 {
        let (case, agent) = incoming(&store, &customer, &team, &format!("售后 {i}"), &[]).await;
        cases.push(case);
        order.push(agent);
    }
    assert_eq!(
        order,
        vec![
            Some(a.id.clone()),
            Some(b.id.clone()),
            Some(b.id.clone()),
            None
        ],
        "a is full after one case, b after two; the fourth waits"
    );
    let routing = store.case_routing(&cases[3].id).await.expect("routing");
    assert_eq!(routing.waiting_reason, Some(Unrouted::AllAtCapacity));
    let profile = store.agent_profile(&a.id).await.expect("profile");
    assert_eq!((profile.open_load, profile.receiving), (1, false));
    let queue = store.team_queue(&team, &page(50)).await.expect("queue");
    assert_eq!(
        queue
            .items
            .iter()
            .map(|c| c.case_id.as_str())
            .collect::<Vec<_>>(),
        vec![cases[3].id.as_str()]
    );
    // a solves a case: room again, and assign-next hands the waiting case over.
    solve(&store, &cases[0]).await;
    let assignment = store
        .assign_next(&actor_of(b), &team)
        .await
        .expect("assign next")
        .expect("an assignment");
    assert_eq!(
        (assignment.case_id.as_str(), assignment.agent_id.as_str()),
        (cases[3].id.as_str(), a.id.as_str())
    );
    assert_eq!(store.assign_next(&cli(), &team).await.expect("next"), None);
    assert!(
        store
            .team_queue(&team, &page(50))
            .await
            .expect("queue")
            .items
            .is_empty()
    );
}

async fn paused_unavailable_and_profileless_agents_are_skipped(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "一线",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
            ("c@example.com", Role::Agent),
            ("d@example.com", Role::Agent),
        ],
    )
    .await;
    let (a, b, c, d) = (&agents[0], &agents[1], &agents[2], &agents[3]);
    for agent in [a, b, c] {
        ready(&store, agent, 10, &[]).await;
    }
    route_by(&store, &team, Strategy::RoundRobin).await;
    store
        .pause_agent(
            &cli(),
            &a.id,
            PauseInput {
                reason: "连续处理投诉，安排休息".into(),
            },
        )
        .await
        .expect("pause");
    store
        .set_availability(&actor_of(b), &b.id, Availability::Busy)
        .await
        .expect("busy");
    let customer = person(&store, "王五").await;
    for i in 0..3 {
        let (_, agent) = incoming(&store, &customer, &team, &format!("问 {i}"), &[]).await;
        assert_eq!(agent.as_deref(), Some(c.id.as_str()), "only c is available");
    }
    store
        .set_availability(&actor_of(c), &c.id, Availability::Away)
        .await
        .expect("away");
    let (waiting, agent) = incoming(&store, &customer, &team, "等待", &[]).await;
    assert_eq!(agent, None);
    assert_eq!(
        store
            .case_routing(&waiting.id)
            .await
            .expect("routing")
            .waiting_reason,
        Some(Unrouted::NoneAvailable)
    );
    // d has no profile, so never goes on duty and is never routed to.
    assert_eq!(
        store.agent_profile(&d.id).await.expect("d").availability,
        Availability::Offline
    );
    // Resuming a routes the waiting case to her at once.
    let resumed = store
        .resume_agent(&cli(), &a.id, ResumeInput::default())
        .await
        .expect("resume");
    assert!(!resumed.paused);
    assert_eq!(resumed.open_load, 1);
    assert_eq!(
        store.case(&waiting.id).await.expect("case").assignee_id,
        Some(a.id.clone())
    );
    // A team whose only member has no profile: nobody to route to.
    let (empty_team, _) = team_with(&store, "空团队", &[("e@example.com", Role::Agent)]).await;
    route_by(&store, &empty_team, Strategy::LeastLoaded).await;
    let (orphan, agent) = incoming(&store, &customer, &empty_team, "无人", &[]).await;
    assert_eq!(agent, None);
    assert_eq!(
        store
            .case_routing(&orphan.id)
            .await
            .expect("routing")
            .waiting_reason,
        Some(Unrouted::NoAgents)
    );
}

async fn auto_assign_off_leaves_cases_in_the_queue(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(&store, "人工分配", &[("a@example.com", Role::Agent)]).await;
    ready(&store, &agents[0], 10, &[]).await;
    let customer = person(&store, "赵六").await;
    // No settings saved: the defaults, which do not route by themselves.
    let defaults = store.team_routing(&team).await.expect("defaults");
    assert_eq!(
        (defaults.strategy, defaults.auto_assign, defaults.version),
        (Strategy::RoundRobin, false, 0)
    );
    let (case, agent) = incoming(&store, &customer, &team, "等人工", &[]).await;
    assert_eq!(agent, None);
    let routing = store.case_routing(&case.id).await.expect("routing");
    assert_eq!(routing.waiting_reason, Some(Unrouted::AutoAssignOff));
    // A case without a team waits in no queue.
    let loose = loose_case(&store, &customer, "无团队", &[]).await;
    assert_eq!(store.route_case_now(&loose.id).await.expect("route"), None);
    assert_eq!(
        store
            .case_routing(&loose.id)
            .await
            .expect("routing")
            .waiting_reason,
        Some(Unrouted::NoTeam)
    );
    // Turning automatic assignment on routes the queue at once.
    route_by(&store, &team, Strategy::RoundRobin).await;
    assert_eq!(
        store.case(&case.id).await.expect("case").assignee_id,
        Some(agents[0].id.clone())
    );
    // A solved case is not routed.
    let solved = loose_case(&store, &customer, "已解决", &[]).await;
    solve(&store, &solved).await;
    store
        .set_team_routing(&cli(), &team, settings(Strategy::RoundRobin, false), None)
        .await
        .expect("off");
    let _ = route_into(&store, &solved, &team).await;
    route_by(&store, &team, Strategy::RoundRobin).await;
    assert_eq!(
        store.case(&solved.id).await.expect("case").assignee_id,
        None
    );
}

async fn assign_next_routes_the_oldest_case_someone_can_take(store: Store) {
    let (store, clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "一线",
        &[
            ("a@example.com", Role::Agent),
            ("lead@example.com", Role::Supervisor),
        ],
    )
    .await;
    let (a, lead) = (&agents[0], &agents[1]);
    ready(&store, a, 10, &[]).await;
    let customer = person(&store, "钱七").await;
    let (french, _) = incoming(&store, &customer, &team, "法语", &["french"]).await;
    clock.advance(MINUTE);
    let (second, _) = incoming(&store, &customer, &team, "第二", &[]).await;
    clock.advance(MINUTE);
    let (third, _) = incoming(&store, &customer, &team, "第三", &[]).await;
    let first = store
        .assign_next(&actor_of(lead), &team)
        .await
        .expect("assign next")
        .expect("assigned");
    assert_eq!(
        (first.case_id.as_str(), first.agent_id.as_str()),
        (second.id.as_str(), a.id.as_str()),
        "the oldest case nobody can take is passed over"
    );
    assert_eq!(first.strategy, Strategy::RoundRobin);
    let audit = audit_of(&store, "case", &second.id).await;
    assert_eq!(
        audit
            .iter()
            .find(|e| e.action == "assign")
            .expect("assign")
            .actor,
        "lead@example.com"
    );
    let next = store
        .assign_next(&actor_of(lead), &team)
        .await
        .expect("assign next")
        .expect("assigned");
    assert_eq!(next.case_id, third.id);
    assert_eq!(
        store
            .assign_next(&actor_of(lead), &team)
            .await
            .expect("none"),
        None
    );
    assert_eq!(
        store.case(&french.id).await.expect("case").assignee_id,
        None
    );
    expect_not_found(
        store
            .assign_next(&cli(), "0190a000-0000-7000-8000-000000000000")
            .await,
        "team",
    );
}

async fn concurrent_assignments_respect_capacity(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, agents) = team_with(
        &store,
        "并发",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
        ],
    )
    .await;
    for agent in &agents {
        ready(&store, agent, 2, &[]).await;
    }
    let customer = person(&store, "孙八").await;
    for i in 0..8 {
        incoming(&store, &customer, &team, &format!("并发 {i}"), &[]).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let team = team.clone();
        tasks.push(tokio::spawn(async move {
            store.assign_next(&cli(), &team).await
        }));
    }
    let mut assigned = 0;
    for task in tasks {
        if task.await.expect("join").expect("assign next").is_some() {
            assigned += 1;
        }
    }
    assert_eq!(assigned, 4, "two agents of capacity two");
    for profile in store.team_agents(&team).await.expect("agents") {
        assert_eq!(profile.open_load, 2, "{}", profile.name);
    }
    assert_eq!(
        store
            .team_queue(&team, &page(50))
            .await
            .expect("queue")
            .items
            .len(),
        4
    );
}

async fn the_queue_lists_unassigned_cases_oldest_first(store: Store) {
    let (store, clock) = fixed(store);
    let (team, agents) = team_with(&store, "队列", &[("a@example.com", Role::Agent)]).await;
    let (other, _) = team_with(&store, "别的团队", &[]).await;
    store
        .set_team_routing(
            &cli(),
            &team,
            TeamRoutingInput {
                kind_skills: Some([("order".to_string(), vec!["orders".to_string()])].into()),
                ..settings(Strategy::LeastLoaded, false)
            },
            None,
        )
        .await
        .expect("settings");
    let customer = person(&store, "周九").await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let (case, _) =
            incoming(&store, &customer, &team, &format!("排队 {i}"), &["english"]).await;
        expected.push(case.id);
        clock.advance(1000);
    }
    let order = loose_case_of(&store, &customer, CaseKind::Order, "订单", &[]).await;
    route_into(&store, &order, &team).await;
    expected.push(order.id.clone());
    // Not in this queue: another team's case, an assigned case, a closed one.
    incoming(&store, &customer, &other, "别处", &[]).await;
    store
        .create_case(
            &cli(),
            kefu_store::cases::NewCase {
                team_id: Some(team.clone()),
                assignee_id: Some(agents[0].id.clone()),
                ..new_case(&customer, CaseKind::Consultation, "已分配")
            },
        )
        .await
        .expect("assigned in the team");
    let closed = loose_case(&store, &customer, "关闭", &[]).await;
    route_into(&store, &closed, &team).await;
    store
        .change_case_status(
            &cli(),
            &closed.id,
            StatusChange {
                status: CaseStatus::Closed,
                reason: None,
            },
            None,
        )
        .await
        .expect("close");
    let queue = walk(2, async |p| store.team_queue(&team, &p).await).await;
    assert_eq!(
        queue.iter().map(|c| c.case_id.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(skill_names(&queue[0].required_skills), vec!["english"]);
    assert_eq!(skill_names(&queue[5].required_skills), vec!["orders"]);
    assert_eq!(queue[5].kind, CaseKind::Order);
    expect_not_found(
        store
            .team_queue("0190a000-0000-7000-8000-000000000000", &page(10))
            .await,
        "team",
    );
}

async fn pause_and_resume_are_audited_and_notified(store: Store) {
    let (store, _clock) = fixed(store);
    let (_team, members) = team_with(
        &store,
        "一线",
        &[
            ("a@example.com", Role::Agent),
            ("lead@example.com", Role::Supervisor),
        ],
    )
    .await;
    let (a, lead) = (&members[0], &members[1]);
    let paused = store
        .pause_agent(
            &actor_of(lead),
            &a.id,
            PauseInput {
                reason: "连续接待三位愤怒客户，休息十五分钟".into(),
            },
        )
        .await
        .expect("pause");
    assert!(paused.paused);
    assert!(!paused.receiving);
    assert_eq!(paused.paused_by.as_deref(), Some(lead.id.as_str()));
    assert_eq!(
        paused.paused_reason.as_deref(),
        Some("连续接待三位愤怒客户，休息十五分钟")
    );
    assert!(paused.paused_at.is_some());
    let audit = audit_of(&store, "agent_routing", &a.id).await;
    assert_eq!(audit[0].action, "pause");
    assert_eq!(audit[0].actor, "lead@example.com");
    assert_eq!(audit[0].before.as_ref().expect("before")["paused"], false);
    assert_eq!(audit[0].after.as_ref().expect("after")["paused"], true);
    let notes = notices(&store, a, "routing_paused").await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message_zh.contains("休息十五分钟"), "{notes:?}");
    assert!(notes[0].message_en.contains("paused routing to you"));
    // Twice is refused, and writes nothing.
    let before = audit_count(&store).await;
    expect_conflict(
        store
            .pause_agent(
                &actor_of(lead),
                &a.id,
                PauseInput {
                    reason: "again".into(),
                },
            )
            .await,
        "already_paused",
    );
    assert_eq!(audit_count(&store).await, before);
    let resumed = store
        .resume_agent(
            &actor_of(lead),
            &a.id,
            ResumeInput {
                note: Some("已休息".into()),
            },
        )
        .await
        .expect("resume");
    assert!(!resumed.paused);
    assert_eq!(resumed.paused_reason, None);
    assert_eq!(resumed.paused_by, None);
    let audit = audit_of(&store, "agent_routing", &a.id).await;
    assert_eq!(audit[0].action, "resume");
    assert_eq!(audit[0].actor, "lead@example.com");
    let notes = notices(&store, a, "routing_resumed").await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message_zh.contains("已恢复"), "{notes:?}");
    assert!(notes[0].message_zh.contains("已休息"), "{notes:?}");
    let before = audit_count(&store).await;
    expect_conflict(
        store
            .resume_agent(&actor_of(lead), &a.id, ResumeInput::default())
            .await,
        "not_paused",
    );
    assert_eq!(audit_count(&store).await, before);
}

async fn availability_tracks_continuous_duty(store: Store) {
    let (store, clock) = fixed(store);
    let (_team, members) = team_with(&store, "一线", &[("a@example.com", Role::Agent)]).await;
    let a = &members[0];
    let on = store
        .set_availability(&actor_of(a), &a.id, Availability::Available)
        .await
        .expect("available");
    assert_eq!(on.on_duty_since.map(|t| t.0), Some(T0));
    // Busy is still on duty; the clock keeps running.
    clock.advance(30 * MINUTE);
    let busy = store
        .set_availability(&actor_of(a), &a.id, Availability::Busy)
        .await
        .expect("busy");
    assert_eq!(busy.on_duty_since.map(|t| t.0), Some(T0));
    // Setting the same availability again changes nothing and records nothing.
    let before = audit_count(&store).await;
    let same = store
        .set_availability(&actor_of(a), &a.id, Availability::Busy)
        .await
        .expect("busy again");
    assert_eq!(same.version, busy.version);
    assert_eq!(audit_count(&store).await, before);
    // A break ends it; coming back starts it again.
    clock.advance(MINUTE);
    let away = store
        .set_availability(&actor_of(a), &a.id, Availability::Away)
        .await
        .expect("away");
    assert_eq!(away.on_duty_since, None);
    clock.advance(10 * MINUTE);
    let back = store
        .set_availability(&actor_of(a), &a.id, Availability::Available)
        .await
        .expect("back");
    assert_eq!(back.on_duty_since.map(|t| t.0), Some(T0 + 41 * MINUTE));
    let audit = audit_of(&store, "agent_routing", &a.id).await;
    assert_eq!(audit[0].action, "availability");
    assert_eq!(
        audit[0].after.as_ref().expect("after")["availability"],
        "available"
    );
}

// ---------------------------------------------------------------------------------------
// Stress

async fn stress_facts_come_from_the_database(store: Store) {
    let (store, clock) = fixed(store);
    let (_team, members) = team_with(&store, "投诉组", &[("a@example.com", Role::Agent)]).await;
    let a = &members[0];
    ready(&store, a, 2, &[]).await;
    let customer = person(&store, "吴十").await;
    // Oldest to newest: angry, calm, angry, aggressive, angry → a streak of three.
    for behaviour in [
        Behaviour::AngryVenting,
        Behaviour::PassiveGrumbling,
        Behaviour::AngryVenting,
        Behaviour::Aggressive,
        Behaviour::AngryVenting,
    ] {
        complaint_for(&store, &customer, a, behaviour, None).await;
    }
    clock.advance(200 * MINUTE);
    let report = store.assess_stress(&a.id).await.expect("assess");
    assert_eq!(
        report.facts,
        StressFacts {
            angry_streak: 3,
            minutes_on_duty: 200,
            complaints_received: 0,
            open_load: 5,
            capacity: 2,
        }
    );
    // Three sources at once: the streak, the duty and the load (250 %, severe).
    assert_eq!(report.level, StressLevel::Severe);
    let sources: Vec<StressSource> = report.reasons.iter().map(|r| r.source).collect();
    assert_eq!(
        sources,
        vec![
            StressSource::Overload,
            StressSource::Combined,
            StressSource::AngryStreak,
            StressSource::LongDuty
        ]
    );
    assert!(report.flag.is_none(), "assessing raises nothing");
    // Complaints naming the agent count; a calmer case ends the streak.
    let other = person(&store, "郑十一").await;
    let colleague = user(&store, "colleague@example.com", Role::Agent).await;
    for _ in 0..2 {
        complaint_for(
            &store,
            &other,
            &colleague,
            Behaviour::PassiveGrumbling,
            Some(a),
        )
        .await;
    }
    assigned_case(&store, &customer, a, "普通咨询").await;
    let report = store.assess_stress(&a.id).await.expect("assess");
    assert_eq!(report.facts.complaints_received, 2);
    assert_eq!(report.facts.angry_streak, 0);
    assert_eq!(report.facts.open_load, 6);
    // A month later the complaints and the streak are out of their windows; the agent
    // went off duty meanwhile.
    store
        .set_availability(&actor_of(a), &a.id, Availability::Offline)
        .await
        .expect("offline");
    clock.advance(31 * DAY);
    let report = store.assess_stress(&a.id).await.expect("assess");
    assert_eq!(
        (
            report.facts.complaints_received,
            report.facts.minutes_on_duty
        ),
        (0, 0)
    );
    let admin = user(&store, "admin@example.com", Role::Admin).await;
    expect_invalid(store.assess_stress(&admin.id).await, "user_id");
}

async fn the_sweep_flags_once_and_notifies_supervisors(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, members) = team_with(
        &store,
        "投诉组",
        &[
            ("a@example.com", Role::Agent),
            ("lead@example.com", Role::Supervisor),
        ],
    )
    .await;
    let (a, lead) = (&members[0], &members[1]);
    ready(&store, a, 10, &[]).await;
    let customer = person(&store, "冯十二").await;
    assert_eq!(
        store.sweep_stress().await.expect("sweep"),
        StressSweepReport {
            assessed: 1,
            ..Default::default()
        },
        "nothing to flag yet"
    );
    for _ in 0..3 {
        complaint_for(&store, &customer, a, Behaviour::AngryVenting, None).await;
    }
    let report = store.sweep_stress().await.expect("sweep");
    assert_eq!((report.raised, report.cleared, report.paused), (1, 0, 0));
    let notes = notices(&store, lead, "agent_stress").await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .message_zh
            .contains("连续接待了 3 位愤怒或激进的客户"),
        "{notes:?}"
    );
    assert!(notes[0].message_zh.contains("偏高"), "{notes:?}");
    assert!(
        notes[0]
            .message_en
            .contains("3 angry or aggressive customers in a row")
    );
    assert!(notices(&store, a, "agent_stress").await.is_empty());
    // Once per flag: the next sweep finds the flag and says nothing.
    let report = store.sweep_stress().await.expect("sweep");
    assert_eq!(report.raised, 0);
    assert_eq!(notices(&store, lead, "agent_stress").await.len(), 1);
    let profile = store.agent_profile(&a.id).await.expect("profile");
    assert_eq!(profile.stress_level, Some(StressLevel::Elevated));
    assert!(!profile.paused, "the team does not pause automatically");
    // Worse: a new, severe flag replaces the elevated one.
    for _ in 0..2 {
        complaint_for(&store, &customer, a, Behaviour::Aggressive, None).await;
    }
    assert_eq!(store.sweep_stress().await.expect("sweep").raised, 1);
    assert_eq!(notices(&store, lead, "agent_stress").await.len(), 2);
    let open = store
        .stress_flags(
            &StressFlagFilter {
                open: Some(true),
                ..Default::default()
            },
            &page(10),
        )
        .await
        .expect("flags")
        .items;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].level, StressLevel::Severe);
    assert_eq!(open[0].facts.angry_streak, 5);
    assert_eq!(open[0].user_id, a.id);
    assert_eq!(open[0].team_id.as_deref(), Some(team.as_str()));
    assert!(!open[0].auto_paused);
    let report = store.assess_stress(&a.id).await.expect("assess");
    assert_eq!(
        report.flag.as_ref().map(|f| f.id.clone()),
        Some(open[0].id.clone())
    );
    // The supervisor acknowledges it, once.
    let acknowledged = store
        .acknowledge_stress_flag(
            &actor_of(lead),
            &open[0].id,
            AcknowledgeInput {
                note: Some("已谈话并安排轮休".into()),
            },
        )
        .await
        .expect("acknowledge");
    assert_eq!(
        acknowledged.acknowledged_by.as_deref(),
        Some(lead.id.as_str())
    );
    assert_eq!(acknowledged.acknowledgement_note, "已谈话并安排轮休");
    expect_conflict(
        store
            .acknowledge_stress_flag(&actor_of(lead), &open[0].id, AcknowledgeInput::default())
            .await,
        "already_acknowledged",
    );
    let audit = audit_of(&store, "stress_flag", &open[0].id).await;
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["acknowledge", "raise"]
    );
    // A calmer customer ends the streak: the flag clears, quietly.
    assigned_case(&store, &customer, a, "普通咨询").await;
    let report = store.sweep_stress().await.expect("sweep");
    assert_eq!((report.raised, report.cleared), (0, 1));
    assert_eq!(notices(&store, lead, "agent_stress").await.len(), 2);
    let all = store
        .stress_flags(&StressFlagFilter::default(), &page(10))
        .await
        .expect("flags")
        .items;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|f| f.cleared_at.is_some()));
    assert_eq!(
        store
            .agent_profile(&a.id)
            .await
            .expect("profile")
            .stress_level,
        None
    );
    let filtered = store
        .stress_flags(
            &StressFlagFilter {
                user_id: Some(lead.id.clone()),
                ..Default::default()
            },
            &page(10),
        )
        .await
        .expect("flags");
    assert!(filtered.items.is_empty());
}

async fn severe_stress_pauses_routing_when_the_team_says_so(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, members) = team_with(
        &store,
        "投诉组",
        &[
            ("a@example.com", Role::Agent),
            ("b@example.com", Role::Agent),
            ("lead@example.com", Role::Supervisor),
        ],
    )
    .await;
    let (a, b, lead) = (&members[0], &members[1], &members[2]);
    ready(&store, a, 10, &[]).await;
    ready(&store, b, 10, &[]).await;
    store
        .set_team_routing(
            &cli(),
            &team,
            TeamRoutingInput {
                auto_pause_on_severe: Some(true),
                stress: Some(StressThresholds {
                    angry_streak_elevated: 2,
                    angry_streak_severe: 3,
                    ..Default::default()
                }),
                ..settings(Strategy::RoundRobin, true)
            },
            None,
        )
        .await
        .expect("settings");
    let customer = person(&store, "陈十三").await;
    for _ in 0..3 {
        complaint_for(&store, &customer, a, Behaviour::Aggressive, None).await;
    }
    let report = store.sweep_stress().await.expect("sweep");
    assert_eq!((report.raised, report.paused), (1, 1));
    let profile = store.agent_profile(&a.id).await.expect("profile");
    assert!(profile.paused);
    assert_eq!(profile.paused_by, None, "kefu paused, not a person");
    assert!(
        profile
            .paused_reason
            .as_deref()
            .is_some_and(|r| r.contains("压力等级严重")),
        "{profile:?}"
    );
    let notes = notices(&store, a, "routing_paused").await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].message_zh.contains("已暂停向你分配新工单"),
        "{notes:?}"
    );
    let lead_notes = notices(&store, lead, "agent_stress").await;
    assert_eq!(lead_notes.len(), 1);
    assert!(
        lead_notes[0].message_zh.contains("已自动暂停"),
        "{lead_notes:?}"
    );
    let audit = audit(
        &store,
        AuditFilter {
            object_type: Some("agent_routing".into()),
            object_id: Some(a.id.clone()),
            action: Some("pause".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "system");
    let flags = store
        .stress_flags(&StressFlagFilter::default(), &page(10))
        .await
        .expect("flags");
    assert!(flags.items[0].auto_paused);
    // New cases now go to b only, and the next sweep does not pause again.
    for i in 0..2 {
        let (_, agent) = incoming(&store, &customer, &team, &format!("新 {i}"), &[]).await;
        assert_eq!(agent.as_deref(), Some(b.id.as_str()));
    }
    assert_eq!(store.sweep_stress().await.expect("sweep").paused, 0);
    assert_eq!(notices(&store, a, "routing_paused").await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Bad input and versions

async fn bad_input_is_refused_and_nothing_is_written(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, members) = team_with(
        &store,
        "一线",
        &[
            ("a@example.com", Role::Agent),
            ("admin@example.com", Role::Admin),
            ("ro@example.com", Role::Readonly),
        ],
    )
    .await;
    let (a, admin, readonly) = (&members[0], &members[1], &members[2]);
    let customer = person(&store, "褚十四").await;
    let case = loose_case(&store, &customer, "问题", &[]).await;
    let audit_before = audit_count(&store).await;
    let profile = |capacity: i64, skills: &[&str]| AgentProfileInput {
        capacity,
        skills: skills.iter().map(|s| s.to_string()).collect(),
    };
    for capacity in [0, -3, 1001] {
        let error = expect_invalid(
            store
                .set_agent_profile(&cli(), &a.id, profile(capacity, &[]), None)
                .await,
            "capacity",
        );
        assert!(error.to_string().contains("between 1 and 1000"), "{error}");
    }
    for skill in ["two words", "", "a/b"] {
        let error = expect_invalid(
            store
                .set_agent_profile(&cli(), &a.id, profile(5, &[skill]), None)
                .await,
            "skills",
        );
        assert!(error.to_string().contains("is not a skill name"), "{error}");
    }
    expect_invalid(
        store
            .set_case_skills(
                &cli(),
                &case.id,
                CaseSkillsInput {
                    skills: vec!["no spaces allowed".into()],
                },
            )
            .await,
        "skills",
    );
    let error = expect_invalid(
        store
            .set_team_routing(
                &cli(),
                &team,
                TeamRoutingInput {
                    kind_skills: Some([("gossip".to_string(), vec!["x".to_string()])].into()),
                    ..settings(Strategy::RoundRobin, true)
                },
                None,
            )
            .await,
        "kind_skills",
    );
    assert!(error.to_string().contains("technical_support"), "{error}");
    expect_invalid(
        store
            .set_team_routing(
                &cli(),
                &team,
                TeamRoutingInput {
                    stress: Some(StressThresholds {
                        duty_minutes_elevated: 300,
                        duty_minutes_severe: 120,
                        ..Default::default()
                    }),
                    ..settings(Strategy::RoundRobin, true)
                },
                None,
            )
            .await,
        "stress",
    );
    // An unknown strategy never becomes a value: the input does not parse, and says
    // which strategies there are.
    let error = serde_json::from_value::<TeamRoutingInput>(
        serde_json::json!({"strategy": "random", "auto_assign": true}),
    )
    .expect_err("unknown strategy");
    assert!(
        error.to_string().contains("round_robin")
            && error.to_string().contains("least_loaded")
            && error.to_string().contains("skill_based"),
        "{error}"
    );
    assert!(Strategy::parse("random").is_err());
    // Only agents and supervisors are routed, paused or profiled.
    for user in [admin, readonly] {
        let error = expect_invalid(
            store
                .pause_agent(
                    &cli(),
                    &user.id,
                    PauseInput {
                        reason: "休息".into(),
                    },
                )
                .await,
            "user_id",
        );
        assert!(
            error.to_string().contains("only agents and supervisors"),
            "{error}"
        );
        expect_invalid(
            store
                .set_agent_profile(&cli(), &user.id, profile(5, &[]), None)
                .await,
            "user_id",
        );
        expect_invalid(
            store
                .set_availability(&cli(), &user.id, Availability::Available)
                .await,
            "user_id",
        );
    }
    expect_invalid(
        store
            .pause_agent(
                &cli(),
                &a.id,
                PauseInput {
                    reason: "  ".into(),
                },
            )
            .await,
        "reason",
    );
    let nobody = "0190a000-0000-7000-8000-000000000000";
    expect_not_found(
        store
            .pause_agent(&cli(), nobody, PauseInput { reason: "x".into() })
            .await,
        "user",
    );
    expect_not_found(store.agent_profile("not-an-id").await, "user");
    expect_not_found(store.team_routing(nobody).await, "team");
    expect_not_found(
        store
            .set_team_routing(&cli(), nobody, settings(Strategy::RoundRobin, true), None)
            .await,
        "team",
    );
    expect_not_found(
        store
            .acknowledge_stress_flag(&cli(), nobody, AcknowledgeInput::default())
            .await,
        "stress flag",
    );
    expect_not_found(store.route_case_now(nobody).await, "case");
    // Nothing was written.
    assert_eq!(audit_count(&store).await, audit_before);
    let untouched = store.agent_profile(&a.id).await.expect("profile");
    assert_eq!(
        (untouched.version, untouched.capacity, untouched.paused),
        (0, DEFAULT_CAPACITY, false)
    );
    assert_eq!(store.team_routing(&team).await.expect("team").version, 0);
    assert!(
        store
            .case_routing(&case.id)
            .await
            .expect("routing")
            .skills
            .is_empty()
    );
    assert!(notifications_of(&store, a).await.is_empty());
}

async fn settings_and_profiles_check_versions(store: Store) {
    let (store, _clock) = fixed(store);
    let (team, members) = team_with(&store, "一线", &[("a@example.com", Role::Agent)]).await;
    let a = &members[0];
    let saved = store
        .set_team_routing(
            &cli(),
            &team,
            settings(Strategy::SkillBased, false),
            Some(0),
        )
        .await
        .expect("first save");
    assert_eq!((saved.version, saved.strategy), (1, Strategy::SkillBased));
    expect_version_mismatch(
        store
            .set_team_routing(
                &cli(),
                &team,
                settings(Strategy::LeastLoaded, false),
                Some(0),
            )
            .await,
        "team routing",
        0,
        1,
    );
    let audit = audit_of(&store, "team_routing", &team).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "update");
    assert_eq!(audit[0].before, None, "the defaults were never saved");
    let profile = store
        .set_agent_profile(
            &cli(),
            &a.id,
            AgentProfileInput {
                capacity: 7,
                skills: vec!["Billing".into(), "billing".into(), "粤语".into()],
            },
            Some(0),
        )
        .await
        .expect("profile");
    assert_eq!(profile.capacity, 7);
    assert_eq!(skill_names(&profile.skills), vec!["billing", "粤语"]);
    assert_eq!(profile.availability, Availability::Offline);
    expect_version_mismatch(
        store
            .set_agent_profile(
                &cli(),
                &a.id,
                AgentProfileInput {
                    capacity: 8,
                    skills: vec![],
                },
                Some(0),
            )
            .await,
        "agent routing profile",
        0,
        profile.version,
    );
    assert_eq!(
        store.agent_profile(&a.id).await.expect("profile").capacity,
        7
    );
    let audit = audit_of(&store, "agent_routing", &a.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].after.as_ref().expect("after")["capacity"], 7);
    // Errors read as the API will show them.
    let error = store
        .set_agent_profile(
            &cli(),
            &a.id,
            AgentProfileInput {
                capacity: 0,
                skills: vec![],
            },
            None,
        )
        .await
        .expect_err("capacity 0");
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
}
