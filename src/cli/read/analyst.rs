//! The analyst's reading verbs over QueryService that have no recording verb beside them:
//! `party show|list`, `source show|list`, `official list`, `official contacts`,
//! `commitment overdue`, `commitment compliance`. Human text names parties, officials and posts
//! and gives statuses in words; `--json` gives one document (`based_on_position`, the rows).

use super::*;

fn party_json(party: &pb::PartyView) -> Value {
    let details = party.details.clone().unwrap_or_default();
    json!({
        "code": party.code,
        "name": details.name,
        "kind": pb::PartyKind::try_from(details.kind).map(|k| k.as_str_name()).unwrap_or("?"),
        "iso_alpha2": details.iso_alpha2,
        "iso_alpha3": details.iso_alpha3,
        "wikidata_qid": details.wikidata_qid,
        "cameo_code": details.cameo_code,
        "stream_version": party.stream_version,
    })
}

fn source_json(source: &pb::SourceView) -> Value {
    let details = source.details.clone().unwrap_or_default();
    json!({
        "source_id": source.source_id,
        "title": details.title,
        "url": details.url,
        "publisher": details.publisher,
        "published_at": timestamp(details.published_at.as_ref().and_then(|p| p.at.as_ref())),
        "retrieved_at": timestamp(details.retrieved_at.as_ref()),
        "language": details.language,
        "stream_version": source.stream_version,
    })
}

fn official_json(official: &pb::OfficialView) -> Value {
    json!({
        "official_id": official.official_id,
        "name": official.name,
        "offices": official.offices.iter().map(|o| json!({
            "post": o.post,
            "party": o.party,
            "accredited_to": o.accredited_to,
            "from": timestamp(o.from.as_ref().and_then(|f| f.at.as_ref())),
            "to": timestamp(o.to.as_ref().and_then(|t| t.at.as_ref())),
        })).collect::<Vec<_>>(),
        "stream_version": official.stream_version,
    })
}

/// The posts of an official's offices still held (no end), joined.
fn current_posts(official: &Value) -> String {
    let posts: Vec<&str> = official["offices"]
        .as_array()
        .map(|offices| {
            offices
                .iter()
                .filter(|office| office["to"].is_null())
                .filter_map(|office| office["post"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if posts.is_empty() {
        "no office held".into()
    } else {
        posts.join("; ")
    }
}

/// `dipledger party show CODE`.
pub async fn party_show(server: &str, code: &str, as_of: Option<&str>, json: bool) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_party(pb::GetPartyRequest {
            code: code.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let value = party_json(&answer.party.unwrap_or_default());
    Ok(render_one("party", value, answer.based_on_position, json))
}

/// `dipledger party list`.
pub async fn party_list(server: &str, as_of: Option<&str>, json: bool) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_parties(pb::ListPartiesRequest {
            page: super::full_page(String::new()),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows = answer.parties.iter().map(party_json).collect();
    Ok(render_list(
        "parties",
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        |row| {
            format!(
                "{:<8} {:<32} {}",
                row["code"].as_str().unwrap_or(""),
                row["name"].as_str().unwrap_or(""),
                in_words(row["kind"].as_str().unwrap_or(""))
            )
        },
    ))
}

/// `dipledger source show ID`.
pub async fn source_show(server: &str, id: &str, as_of: Option<&str>, json: bool) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_source(pb::GetSourceRequest {
            source_id: id.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let value = source_json(&answer.source.unwrap_or_default());
    Ok(render_one("source", value, answer.based_on_position, json))
}

/// `dipledger source list`.
pub async fn source_list(server: &str, as_of: Option<&str>, json: bool) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_sources(pb::ListSourcesRequest {
            page: super::full_page(String::new()),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows = answer.sources.iter().map(source_json).collect();
    Ok(render_list(
        "sources",
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        |row| {
            let title = row["title"]
                .as_str()
                .or(row["url"].as_str())
                .unwrap_or("(untitled)");
            let published = row["published_at"]
                .as_str()
                .or(row["retrieved_at"].as_str())
                .unwrap_or("");
            format!(
                "{}  {}  {title}",
                row["source_id"].as_str().unwrap_or(""),
                published.get(..10).unwrap_or(published)
            )
        },
    ))
}

/// `dipledger official list --party CODE`.
pub async fn official_list(
    server: &str,
    party: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_officials(pb::ListOfficialsRequest {
            party: party.into(),
            page: super::full_page(String::new()),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows = answer.officials.iter().map(official_json).collect();
    Ok(render_list(
        "officials",
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        |row| {
            format!(
                "{}  {:<28} {}",
                row["official_id"].as_str().unwrap_or(""),
                row["name"].as_str().unwrap_or(""),
                current_posts(row)
            )
        },
    ))
}

/// `dipledger official contacts ID`: whom an official met, with names and posts, most meetings
/// first.
pub async fn official_contacts(
    server: &str,
    id: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_contacts(pb::GetContactsRequest {
            official_id: id.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows: Vec<Value> = answer
        .contacts
        .iter()
        .map(|contact| {
            json!({
                "official_id": contact.official_id,
                "name": contact.name,
                "posts": contact.posts,
                "meetings": contact.meetings,
            })
        })
        .collect();
    Ok(render_list(
        "contacts",
        rows,
        answer.based_on_position,
        "",
        json,
        |row| {
            let meetings = row["meetings"].as_i64().unwrap_or(0);
            let posts: Vec<&str> = row["posts"]
                .as_array()
                .map(|posts| posts.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!(
                "{:<28} {:<48} {meetings} {}",
                row["name"].as_str().unwrap_or(""),
                if posts.is_empty() {
                    "-".into()
                } else {
                    posts.join("; ")
                },
                if meetings == 1 { "meeting" } else { "meetings" }
            )
        },
    ))
}

/// `dipledger commitment overdue [--on DATE]`: commitments due before the date and still open.
pub async fn commitment_overdue(
    server: &str,
    on: Option<&str>,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let on = match on {
        None => {
            dipledger::api::convert::timestamp_to_pb(dipledger::log::Clock::now(&dipledger::log::SystemClock))
        }
        Some(text) => crate::cli::record::pb_time(text, "on")?,
    };
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_overdue_commitments(pb::ListOverdueCommitmentsRequest {
            on: Some(on),
            page: super::full_page(String::new()),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows: Vec<Value> = answer.commitments.iter().map(views::commitment_json).collect();
    // The JSON key is the rows' kind (`commitments`), the text says which ones.
    let kind = if json {
        "commitments"
    } else {
        "overdue commitments"
    };
    Ok(render_list(
        kind,
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        views::commitment_line,
    ))
}

/// `dipledger commitment compliance PARTY`.
pub async fn commitment_compliance(
    server: &str,
    party: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_compliance(pb::GetComplianceRequest {
            party: party.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    if json {
        return Ok(format!(
            "{:#}\n",
            json!({
                "based_on_position": answer.based_on_position,
                "party": answer.party,
                "assessed_commitments": answer.assessed_commitments,
                "score_sum": answer.score_sum,
            })
        ));
    }
    let assessed = answer.assessed_commitments;
    Ok(format!(
        "{} {}\n  {assessed} assessed {}, score sum {:+} (each latest score -1, 0 or +1)\n",
        answer.party,
        as_of_note(answer.based_on_position),
        if assessed == 1 {
            "commitment"
        } else {
            "commitments"
        },
        answer.score_sum
    ))
}
