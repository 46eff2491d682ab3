"""Writes a Thrift IDL for the TCLIService calls tarn serves, from the field
specs of databricks-sql-connector's generated Python types (Apache-2.0),
which carry Databricks' extensions to Apache Hive's TCLIService.thrift."""
import inspect, re, sys
from databricks.sql.thrift_api.TCLIService import ttypes, TCLIService as svc
from thrift.Thrift import TType

METHODS = ["OpenSession", "CloseSession", "GetInfo", "ExecuteStatement", "GetTypeInfo", "GetCatalogs",
           "GetSchemas", "GetTables", "GetTableTypes", "GetColumns", "GetFunctions", "GetPrimaryKeys",
           "GetCrossReference", "GetOperationStatus", "CancelOperation", "CloseOperation",
           "GetResultSetMetadata", "FetchResults"]
ENUM_FIELDS = {
    "statusCode": "TStatusCode", "operationState": "TOperationState", "operationType": "TOperationType",
    "serverProtocolVersion": "TProtocolVersion", "client_protocol": "TProtocolVersion",
    "infoType": "TGetInfoType", "orientation": "TFetchOrientation", "resultFormat": "TSparkRowSetType",
}
TYPE_ENUM = {("TPrimitiveTypeEntry", "type"): "TTypeId"}
UNIONS = {"TTypeQualifierValue", "TTypeEntry", "TColumnValue", "TColumn", "TGetInfoValue"}

structs, order, enums = {}, [], set()

def required_fields(cls):
    try:
        src = inspect.getsource(cls.validate)
    except (OSError, TypeError):
        return set()
    return set(re.findall(r"Required field (\w+) is unset", src))

def type_name(ttype, args, owner, field):
    if ttype == TType.BOOL: return "bool"
    if ttype == TType.BYTE: return "i8"
    if ttype == TType.DOUBLE: return "double"
    if ttype == TType.I16: return "i16"
    if ttype == TType.I32:
        e = TYPE_ENUM.get((owner, field)) or ENUM_FIELDS.get(field)
        if e and hasattr(ttypes, e):
            enums.add(e); return e
        return "i32"
    if ttype == TType.I64: return "i64"
    if ttype == TType.STRING: return "binary" if args == "BINARY" else "string"
    if ttype == TType.STRUCT:
        visit(args[0]); return args[0].__name__
    if ttype == TType.LIST: return f"list<{type_name(args[0], args[1], owner, field)}>"
    if ttype == TType.SET: return f"set<{type_name(args[0], args[1], owner, field)}>"
    if ttype == TType.MAP:
        return f"map<{type_name(args[0], args[1], owner, field)}, {type_name(args[2], args[3], owner, field)}>"
    raise ValueError(ttype)

def visit(cls):
    name = cls.__name__
    if name in structs: return
    structs[name] = None
    req = required_fields(cls)
    fields = []
    for spec in cls.thrift_spec:
        if spec is None: continue
        fid, ttype, fname, args, _default = spec
        t = type_name(ttype, args, name, fname)
        kind = "required" if fname in req and name not in UNIONS else "optional"
        fields.append(f"  {fid}: {kind} {t} {fname}")
    structs[name] = fields
    order.append(name)

service = []
for m in METHODS:
    a, r = getattr(svc, m + "_args"), getattr(svc, m + "_result")
    req_cls = a.thrift_spec[1][3][0]; resp_cls = r.thrift_spec[0][3][0]
    visit(req_cls); visit(resp_cls)
    service.append(f"  {resp_cls.__name__} {m}(1: {req_cls.__name__} req);")

out = [l for l in open(sys.argv[1]).read().splitlines()] if len(sys.argv) > 1 else []
print("\n".join(out))
for e in sorted(enums):
    vals = getattr(ttypes, e)._VALUES_TO_NAMES
    print(f"enum {e} {{")
    for v in sorted(vals):
        print(f"  {vals[v]} = {v},")
    print("}\n")
for name in order:
    kw = "struct"
    print(f"{kw} {name} {{")
    print("\n".join(structs[name]))
    print("}\n")
print("service TCLIService {")
print("\n".join(service))
print("}")
