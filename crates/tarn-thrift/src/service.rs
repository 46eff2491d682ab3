//! The TCLIService calls: sessions onto tarn-sql's SQL sessions, statements
//! onto operations, results as direct results or fetched pages, metadata
//! from the catalog. A failure the client caused is a status in the
//! response (as HiveServer2 answers), never an HTTP error it would retry.

use std::sync::Arc;
use std::time::Duration;

use tarn_catalog::{Catalog, Kind};
use tarn_sql::sessions::{Output, Session, SessionSpec, Sessions};
use tarn_sql::statements::{SqlParameter, StatementError};
use tarn_store::User;
use thrift::ApplicationErrorKind;
use uuid::Uuid;

use crate::metadata::{MetaResult, Metadata};
use crate::operations::{Operation, Operations, Phase};
use crate::rowset;
use crate::tcli::*;
use crate::wire::{self, Call};

/// How long ExecuteStatement waits for a result to send it directly.
const DIRECT_WAIT: Duration = Duration::from_secs(2);
/// How long GetOperationStatus waits for a running operation to end.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// The newest protocol tarn speaks.
const PROTOCOL: TProtocolVersion = TProtocolVersion::SPARK_CLI_SERVICE_PROTOCOL_V8;

/// Who calls, on which warehouse.
pub struct Caller<'a> {
    pub user: &'a User,
    pub warehouse_id: &'a str,
    /// The all-purpose cluster of a cluster's `http_path`: statements run
    /// there instead of on the warehouse.
    pub cluster_id: Option<&'a str>,
}

/// What to send back for one HTTP request.
pub enum Answer {
    /// A Thrift reply (or exception) message: HTTP 200.
    Reply(Vec<u8>),
    /// The body was not a Thrift call: HTTP 400 with this message.
    Malformed(String),
}

/// The service. Cheap to clone.
#[derive(Clone)]
pub struct ThriftService {
    sessions: Sessions,
    catalog: Catalog,
    operations: Operations,
}

fn ok() -> TStatus {
    TStatus::new(TStatusCode::SUCCESS_STATUS, None, None, None, None, None, None)
}

fn failed(code: TStatusCode, message: String, sql_state: Option<String>) -> TStatus {
    TStatus::new(code, None, sql_state, None, message.clone(), message, None)
}

fn invalid_handle(what: &str) -> TStatus {
    failed(TStatusCode::INVALID_HANDLE_STATUS, format!("Invalid {what}: it does not exist or was closed"), None)
}

fn handle_id(id: Uuid) -> THandleIdentifier {
    THandleIdentifier::new(id.as_bytes().to_vec(), Uuid::new_v4().as_bytes().to_vec())
}

/// The message a client shows: Databricks' form, the SQLSTATE at its end.
fn display(e: &StatementError) -> String {
    match &e.sql_state {
        Some(state) if !e.message.contains("SQLSTATE") => format!("{} SQLSTATE: {state}", e.message),
        _ => e.message.clone(),
    }
}

macro_rules! calls {
    ($self:ident, $caller:ident, $call:ident, { $($name:literal => $method:ident),* $(,)? }) => {
        match $call.name.as_str() {
            $($name => {
                let request = $call.request()?;
                wire::reply($name, $call.seq, &$self.$method($caller, request).await)
            })*
            other => Ok(wire::exception(
                other,
                $call.seq,
                ApplicationErrorKind::UnknownMethod,
                format!("{other} is not implemented by tarn"),
            )),
        }
    };
}

impl ThriftService {
    pub fn new(sessions: Sessions, catalog: Catalog) -> Self {
        Self { sessions, catalog, operations: Operations::default() }
    }

    /// Answers one request body.
    pub async fn handle(&self, caller: &Caller<'_>, body: &[u8]) -> Answer {
        let mut call = match Call::read(body) {
            Ok(call) => call,
            Err(e) => return Answer::Malformed(format!("not a Thrift call: {e}")),
        };
        self.operations.forget_closed();
        match self.dispatch(caller, &mut call).await {
            Ok(bytes) => Answer::Reply(bytes),
            Err(e) => {
                Answer::Reply(wire::exception(&call.name, call.seq, ApplicationErrorKind::ProtocolError, e.to_string()))
            }
        }
    }

    async fn dispatch(&self, caller: &Caller<'_>, call: &mut Call<'_>) -> thrift::Result<Vec<u8>> {
        calls!(self, caller, call, {
            "OpenSession" => open_session,
            "CloseSession" => close_session,
            "GetInfo" => get_info,
            "ExecuteStatement" => execute_statement,
            "GetOperationStatus" => get_operation_status,
            "GetResultSetMetadata" => get_result_set_metadata,
            "FetchResults" => fetch_results,
            "CancelOperation" => cancel_operation,
            "CloseOperation" => close_operation,
            "GetCatalogs" => get_catalogs,
            "GetSchemas" => get_schemas,
            "GetTables" => get_tables,
            "GetTableTypes" => get_table_types,
            "GetColumns" => get_columns,
            "GetFunctions" => get_functions,
            "GetTypeInfo" => get_type_info,
            "GetPrimaryKeys" => get_primary_keys,
            "GetCrossReference" => get_cross_reference,
        })
    }

    fn session(&self, caller: &Caller<'_>, handle: &TSessionHandle) -> Option<Arc<Session>> {
        let id = Uuid::from_slice(&handle.session_id.guid).ok()?;
        self.sessions.get(&id.hyphenated().to_string(), &caller.user.user_name).ok()
    }

    async fn open_session(&self, caller: &Caller<'_>, req: TOpenSessionReq) -> TOpenSessionResp {
        let namespace = req.initial_namespace.clone();
        let catalog = namespace.as_ref().and_then(|n| n.catalog_name.clone()).filter(|c| !c.is_empty());
        let schema = namespace.as_ref().and_then(|n| n.schema_name.clone()).filter(|s| !s.is_empty());
        let client = req.client_protocol_i64.and_then(|v| i32::try_from(v).ok()).or(req.client_protocol.map(|v| v.0));
        let version = TProtocolVersion(client.map_or(PROTOCOL.0, |c| c.min(PROTOCOL.0)));
        let refuse = |status| TOpenSessionResp::new(status, version, None, None, None, None, None);
        if let Err(message) = self.check_namespace(catalog.as_deref()) {
            return refuse(failed(TStatusCode::ERROR_STATUS, message, Some("42704".into())));
        }
        let spec = SessionSpec {
            warehouse_id: caller.warehouse_id.to_string(),
            cluster_id: caller.cluster_id.map(str::to_string),
            user: caller.user.user_name.clone(),
            catalog,
            schema,
            conf: req.configuration.clone().unwrap_or_default(),
        };
        match self.sessions.open(spec) {
            Ok(session) => {
                let id = Uuid::parse_str(session.id()).unwrap_or_default();
                let handle = TSessionHandle::new(handle_id(id), version);
                TOpenSessionResp::new(ok(), version, handle, req.configuration, None, namespace, true)
            }
            Err(e) => refuse(failed(TStatusCode::ERROR_STATUS, e.to_string(), None)),
        }
    }

    /// The initial catalog exists. The schema may not yet: a client such as
    /// dbt creates its target schema in the session it opened on it.
    fn check_namespace(&self, catalog: Option<&str>) -> Result<(), String> {
        let catalog = catalog.unwrap_or(tarn_catalog::DEFAULT_CATALOG);
        self.catalog
            .get(Kind::Catalog, catalog)
            .map(drop)
            .map_err(|_| format!("[NO_SUCH_CATALOG_EXCEPTION] Catalog '{catalog}' was not found."))
    }

    async fn close_session(&self, caller: &Caller<'_>, req: TCloseSessionReq) -> TCloseSessionResp {
        let Some(session) = self.session(caller, &req.session_handle) else {
            return TCloseSessionResp::new(invalid_handle("SessionHandle"));
        };
        self.operations.close_session(session.id()).await;
        match self.sessions.close(session.id(), &caller.user.user_name).await {
            Ok(()) => TCloseSessionResp::new(ok()),
            Err(e) => TCloseSessionResp::new(failed(TStatusCode::ERROR_STATUS, e.to_string(), None)),
        }
    }

    async fn get_info(&self, caller: &Caller<'_>, req: TGetInfoReq) -> TGetInfoResp {
        let value = |s: &str| TGetInfoValue::new(s.to_string(), None, None, None, None, None);
        if self.session(caller, &req.session_handle).is_none() {
            return TGetInfoResp::new(invalid_handle("SessionHandle"), value(""));
        }
        let answer = match req.info_type {
            TGetInfoType::CLI_SERVER_NAME => "tarn",
            TGetInfoType::CLI_DBMS_NAME => "Spark SQL",
            TGetInfoType::CLI_DBMS_VER => env!("CARGO_PKG_VERSION"),
            _ => "",
        };
        TGetInfoResp::new(ok(), value(answer))
    }

    async fn execute_statement(&self, caller: &Caller<'_>, req: TExecuteStatementReq) -> TExecuteStatementResp {
        let Some(session) = self.session(caller, &req.session_handle) else {
            return TExecuteStatementResp::new(invalid_handle("SessionHandle"), None, None);
        };
        let parameters = match parameters(req.parameters.unwrap_or_default()) {
            Ok(p) => p,
            Err(message) => {
                return TExecuteStatementResp::new(
                    failed(TStatusCode::ERROR_STATUS, message, Some("42K0I".into())),
                    None,
                    None,
                );
            }
        };
        let limit = req.result_row_limit.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0);
        let arrow = req.can_read_arrow_result.unwrap_or(false);
        let op = self.operations.execute(session, req.statement, parameters, limit, arrow);
        let direct = match &req.get_direct_results {
            Some(want) => {
                op.settle(DIRECT_WAIT).await;
                self.direct_results(&op, want).await
            }
            None => None,
        };
        TExecuteStatementResp::new(ok(), operation_handle(&op), direct)
    }

    /// What a finished operation can send with the call that started it;
    /// closed here when its whole result went out.
    async fn direct_results(&self, op: &Operation, want: &TSparkGetDirectResults) -> Option<TSparkDirectResults> {
        let phase = op.phase();
        if !phase.is_final() {
            return None;
        }
        let status = status_response(op, &phase);
        let Phase::Succeeded(output) = phase else {
            return Some(TSparkDirectResults::new(status, None, None, None));
        };
        let max_rows = usize::try_from(want.max_rows).unwrap_or(usize::MAX);
        let fetched = fetch_response(op, &output, max_rows, false);
        let done = fetched.has_more_rows == Some(false);
        let close = done.then(|| TCloseOperationResp::new(ok()));
        if done {
            self.operations.close(op.id).await;
        }
        Some(TSparkDirectResults::new(status, metadata_response(op, &output), fetched, close))
    }

    async fn get_operation_status(&self, caller: &Caller<'_>, req: TGetOperationStatusReq) -> TGetOperationStatusResp {
        let Some(op) = self.operations.get(&req.operation_handle.operation_id.guid, &caller.user.user_name) else {
            return empty_status(invalid_handle("OperationHandle"));
        };
        let phase = op.settle(STATUS_WAIT).await;
        status_response(&op, &phase)
    }

    async fn get_result_set_metadata(
        &self,
        caller: &Caller<'_>,
        req: TGetResultSetMetadataReq,
    ) -> TGetResultSetMetadataResp {
        let Some(op) = self.operations.get(&req.operation_handle.operation_id.guid, &caller.user.user_name) else {
            return empty_metadata(invalid_handle("OperationHandle"));
        };
        match op.phase() {
            Phase::Succeeded(output) => metadata_response(&op, &output),
            other => empty_metadata(not_finished(&other)),
        }
    }

    async fn fetch_results(&self, caller: &Caller<'_>, req: TFetchResultsReq) -> TFetchResultsResp {
        let Some(op) = self.operations.get(&req.operation_handle.operation_id.guid, &caller.user.user_name) else {
            return TFetchResultsResp::new(invalid_handle("OperationHandle"), None, None, None);
        };
        match op.settle(STATUS_WAIT).await {
            Phase::Succeeded(output) => {
                let max_rows = usize::try_from(req.max_rows).unwrap_or(usize::MAX);
                fetch_response(&op, &output, max_rows, req.include_result_set_metadata.unwrap_or(false))
            }
            other => TFetchResultsResp::new(not_finished(&other), None, None, None),
        }
    }

    async fn cancel_operation(&self, caller: &Caller<'_>, req: TCancelOperationReq) -> TCancelOperationResp {
        match self.operations.get(&req.operation_handle.operation_id.guid, &caller.user.user_name) {
            Some(op) => {
                op.cancel().await;
                TCancelOperationResp::new(ok())
            }
            None => TCancelOperationResp::new(invalid_handle("OperationHandle")),
        }
    }

    async fn close_operation(&self, caller: &Caller<'_>, req: TCloseOperationReq) -> TCloseOperationResp {
        match self.operations.get(&req.operation_handle.operation_id.guid, &caller.user.user_name) {
            Some(op) => {
                self.operations.close(op.id).await;
                TCloseOperationResp::new(ok())
            }
            // Closing twice (or after direct results closed it) is no error.
            None => TCloseOperationResp::new(ok()),
        }
    }

    /// Runs a metadata call and answers as for a statement.
    async fn metadata_call(
        &self,
        caller: &Caller<'_>,
        handle: &TSessionHandle,
        kind: TOperationType,
        want: Option<&TSparkGetDirectResults>,
        answer: impl FnOnce(&Metadata<'_>) -> MetaResult,
    ) -> (TStatus, Option<TOperationHandle>, Option<TSparkDirectResults>) {
        let Some(session) = self.session(caller, handle) else {
            return (invalid_handle("SessionHandle"), None, None);
        };
        let principal = match self.catalog.principal(caller.user) {
            Ok(p) => p,
            Err(e) => return (failed(TStatusCode::ERROR_STATUS, e.to_string(), None), None, None),
        };
        let meta = Metadata { catalog: &self.catalog, principal };
        let result = answer(&meta).map_err(|message| StatementError { code: "BAD_REQUEST", message, sql_state: None });
        let op = self.operations.finished(kind, session, result);
        let direct = match want {
            Some(want) => self.direct_results(&op, want).await,
            None => None,
        };
        (ok(), Some(operation_handle(&op)), direct)
    }
}

/// The metadata calls: each runs [`ThriftService::metadata_call`] with its
/// arguments and wraps the answer in its own response type.
macro_rules! metadata_calls {
    ($($method:ident($req:ty) -> $resp:ident, $kind:ident, |$m:ident, $r:ident| $body:expr;)*) => {
        impl ThriftService {
            $(async fn $method(&self, caller: &Caller<'_>, $r: $req) -> $resp {
                let (status, handle, direct) = self
                    .metadata_call(caller, &$r.session_handle, TOperationType::$kind, $r.get_direct_results.as_ref(), |$m| $body)
                    .await;
                $resp::new(status, handle, direct)
            })*
        }
    };
}

metadata_calls! {
    get_catalogs(TGetCatalogsReq) -> TGetCatalogsResp, GET_CATALOGS, |m, req| m.catalogs();
    get_schemas(TGetSchemasReq) -> TGetSchemasResp, GET_SCHEMAS,
        |m, req| m.schemas(req.catalog_name.as_deref(), req.schema_name.as_deref());
    get_tables(TGetTablesReq) -> TGetTablesResp, GET_TABLES, |m, req| m.tables(
        req.catalog_name.as_deref(), req.schema_name.as_deref(), req.table_name.as_deref(), req.table_types.as_deref());
    get_table_types(TGetTableTypesReq) -> TGetTableTypesResp, GET_TABLE_TYPES, |_m, req| Metadata::table_types();
    get_columns(TGetColumnsReq) -> TGetColumnsResp, GET_COLUMNS, |m, req| m.columns(
        req.catalog_name.as_deref(), req.schema_name.as_deref(), req.table_name.as_deref(), req.column_name.as_deref());
    get_functions(TGetFunctionsReq) -> TGetFunctionsResp, GET_FUNCTIONS, |_m, req| Metadata::functions();
    get_type_info(TGetTypeInfoReq) -> TGetTypeInfoResp, GET_TYPE_INFO, |_m, req| Metadata::type_info();
    get_primary_keys(TGetPrimaryKeysReq) -> TGetPrimaryKeysResp, UNKNOWN, |_m, req| Metadata::primary_keys();
    get_cross_reference(TGetCrossReferenceReq) -> TGetCrossReferenceResp, UNKNOWN, |_m, req| Metadata::cross_reference();
}

fn operation_handle(op: &Operation) -> TOperationHandle {
    TOperationHandle::new(handle_id(op.id), op.kind, true, None)
}

fn not_finished(phase: &Phase) -> TStatus {
    match phase {
        Phase::Failed(e) => failed(TStatusCode::ERROR_STATUS, display(e), e.sql_state.clone()),
        Phase::Canceled => failed(TStatusCode::ERROR_STATUS, "The operation was canceled".into(), Some("HY008".into())),
        _ => failed(TStatusCode::STILL_EXECUTING_STATUS, "The operation is still running".into(), None),
    }
}

fn empty_status(status: TStatus) -> TGetOperationStatusResp {
    TGetOperationStatusResp::new(status, None, None, None, None, None, None, None, None, None, None, None, None, None)
}

fn status_response(op: &Operation, phase: &Phase) -> TGetOperationStatusResp {
    let mut resp = empty_status(ok());
    resp.operation_state = Some(crate::operations::state(phase));
    resp.operation_started = Some(op.started_ms);
    resp.operation_completed = op.completed_ms();
    resp.has_result_set = Some(true);
    if let Phase::Failed(e) = phase {
        resp.sql_state = e.sql_state.clone();
        resp.error_message = Some(e.message.clone());
        resp.display_message = Some(display(e));
    }
    resp
}

fn empty_metadata(status: TStatus) -> TGetResultSetMetadataResp {
    TGetResultSetMetadataResp::new(status, None, None, None, None, None, None, None, None)
}

fn metadata_response(op: &Operation, output: &Output) -> TGetResultSetMetadataResp {
    let mut resp = empty_metadata(ok());
    resp.schema = Some(rowset::table_schema(&output.schema));
    resp.lz4_compressed = Some(false);
    resp.is_staging_operation = Some(false);
    if op.arrow {
        match rowset::arrow_schema(&output.schema) {
            Ok(bytes) => {
                resp.result_format = Some(TSparkRowSetType::ARROW_BASED_SET);
                resp.arrow_schema = Some(bytes);
            }
            Err(e) => return empty_metadata(failed(TStatusCode::ERROR_STATUS, e.to_string(), None)),
        }
    } else {
        resp.result_format = Some(TSparkRowSetType::COLUMN_BASED_SET);
    }
    resp
}

fn fetch_response(op: &Operation, output: &Output, max_rows: usize, with_metadata: bool) -> TFetchResultsResp {
    let offset = op.fetched_rows();
    let (batches, more) = op.fetch(output, max_rows);
    let rows = if op.arrow {
        rowset::arrow_batches(&output.schema, &batches).map(|b| (None, Some(b)))
    } else {
        rowset::columns(&output.schema, &batches).map(|c| (Some(c), None))
    };
    let (columns, arrow) = match rows {
        Ok(rows) => rows,
        Err(e) => {
            return TFetchResultsResp::new(failed(TStatusCode::ERROR_STATUS, e.to_string(), None), None, None, None);
        }
    };
    let count = columns.as_ref().map(|c: &Vec<TColumn>| i32::try_from(c.len()).unwrap_or(i32::MAX));
    let start = i64::try_from(offset).unwrap_or(i64::MAX);
    let set = TRowSet::new(start, Vec::new(), columns, None, count, arrow, None);
    let metadata = with_metadata.then(|| metadata_response(op, output));
    TFetchResultsResp::new(ok(), more, set, metadata)
}

/// The connector's parameters as the engine takes them: named, or
/// positional in order; values as text cast to their type.
fn parameters(given: Vec<TSparkParameter>) -> Result<Vec<SqlParameter>, String> {
    let mut out = Vec::with_capacity(given.len());
    for p in given {
        if p.arguments.is_some() {
            return Err("ARRAY, MAP and STRUCT parameters are not supported by tarn; pass them inline".into());
        }
        let type_text = p.type_.filter(|t| !t.is_empty());
        let void = type_text.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("VOID"));
        let value = p.value.and_then(|v| {
            v.string_value.or(v.double_value.map(|d| d.0.to_string())).or(v.boolean_value.map(|b| b.to_string()))
        });
        out.push(SqlParameter {
            name: p.name.unwrap_or_default(),
            value: if void { None } else { value },
            type_text: if void { None } else { type_text },
        });
    }
    let named = out.iter().filter(|p| !p.name.is_empty()).count();
    if named != 0 && named != out.len() {
        return Err("Parameters must be all named or all positional".into());
    }
    Ok(out)
}
