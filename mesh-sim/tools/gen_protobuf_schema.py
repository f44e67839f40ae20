#!/usr/bin/env python3
"""Writes mesh-sim/src/server/proto/schema.rs: the protobuf field numbers and JSON
names of the Kubernetes kinds kubectl sends as protobuf and asks for in
protobuf.

Typed kubectl commands (`kubectl create namespace|deployment|configmap|...`,
`kubectl run`, `kubectl drain`'s evictions) send
`application/vnd.kubernetes.protobuf`, and typed clients ask for lists in it
(`drain`, `describe`, `rollout history`); mesh-sim stores JSON. Decoding and
encoding need,
for every message, each field's number and type (from the k8s-pb crate's
prost code, generated from Kubernetes' own .proto files) and its JSON name
(from the k8s-openapi crate's serde code, generated from the OpenAPI spec).
Both crates are read from cargo's registry cache:

    cargo fetch    # in a crate depending on k8s-pb and k8s-openapi
    python3 mesh-sim/tools/gen_protobuf_schema.py \
        ~/.cargo/registry/src/*/k8s-pb-0.8.0 \
        ~/.cargo/registry/src/*/k8s-openapi-0.29.0 > mesh-sim/src/server/proto/schema.rs
    cargo fmt --all
"""
import os
import re
import sys

ROOTS = [
    # (apiVersion, kind, k8s-pb module, message): the kinds mesh-sim serves
    # that kubectl creates with typed clients.
    ("v1", "Namespace", "api::core::v1", "Namespace"),
    ("v1", "ConfigMap", "api::core::v1", "ConfigMap"),
    ("v1", "Secret", "api::core::v1", "Secret"),
    ("v1", "ServiceAccount", "api::core::v1", "ServiceAccount"),
    ("v1", "Pod", "api::core::v1", "Pod"),
    ("v1", "Service", "api::core::v1", "Service"),
    ("apps/v1", "Deployment", "api::apps::v1", "Deployment"),
    ("apps/v1", "StatefulSet", "api::apps::v1", "StatefulSet"),
    ("apps/v1", "DaemonSet", "api::apps::v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet", "api::apps::v1", "ReplicaSet"),
    ("batch/v1", "Job", "api::batch::v1", "Job"),
    ("policy/v1", "PodDisruptionBudget", "api::policy::v1", "PodDisruptionBudget"),
    ("policy/v1", "Eviction", "api::policy::v1", "Eviction"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "api::authorization::v1", "SelfSubjectAccessReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "api::authentication::v1", "SelfSubjectReview"),
    ("rbac.authorization.k8s.io/v1", "Role", "api::rbac::v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "api::rbac::v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "api::rbac::v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "api::rbac::v1", "ClusterRoleBinding"),
]

# Messages whose JSON form is not an object.
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time": "Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime": "Time",
    "apimachinery::pkg::apis::meta::v1::Duration": "Duration",
    "apimachinery::pkg::apis::meta::v1::FieldsV1": "RawJson",
    "apimachinery::pkg::runtime::RawExtension": "RawJson",
    "apimachinery::pkg::api::resource::Quantity": "Quantity",
    "apimachinery::pkg::util::intstr::IntOrString": "IntOrString",
}

# Go structs embedded with `json:",inline"`: their fields belong to the parent
# (`handler` is Probe's ProbeHandler: exec, httpGet, tcpSocket, grpc).
INLINE = {"local_object_reference", "volume_source", "ingress_rule_value",
          "ephemeral_container_common", "persistent_volume_source", "handler"}

FIELD = re.compile(
    r'#\[prost\((?P<attr>[^\]]*)\)\]\s*pub (?:r#)?(?P<name>\w+):\s*(?P<ty>.*?)(?=\n\s*(?:///|#\[|$))', re.S)
STRUCT = re.compile(r'pub struct (\w+) \{(.*?)\n\}', re.S)


def load_pb(root):
    """{module::Message: [(number, rust_name, attr, rust_type)]}"""
    messages = {}
    src = os.path.join(root, "src")
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f != "mod.rs":
                continue
            module = os.path.relpath(dirpath, src).replace(os.sep, "::")
            text = open(os.path.join(dirpath, f)).read()
            for name, body in STRUCT.findall(text):
                fields = []
                for m in FIELD.finditer(body + "\n"):
                    attr = m.group("attr")
                    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                    ty = " ".join(m.group("ty").split()).rstrip(",").strip()
                    fields.append((tag, m.group("name"), attr, ty))
                messages[f"{module}::{name}"] = fields
    return messages


def load_json_names(root):
    """{struct_file_stem: {rust_name: json_name}} and a global fallback."""
    per_file, everywhere = {}, {}
    src = os.path.join(root, "src", "v1_33")
    pattern = re.compile(r'"([^"]+)" => Field::Key_(\w+),')
    for dirpath, _, files in os.walk(src):
        for f in files:
            text = open(os.path.join(dirpath, f)).read()
            names = {rust: json for json, rust in pattern.findall(text)}
            per_file[f[:-3]] = names
            for rust, json in names.items():
                everywhere.setdefault(rust, set()).add(json)
    return per_file, everywhere


def snake(name):
    return re.sub(r'(?<=[a-z0-9])([A-Z])', r'_\1', name).lower()


def resolve(module, rust_type):
    inner = re.search(r'Option<\s*(.*)\s*>$', rust_type)
    path = inner.group(1) if inner else rust_type
    path = re.sub(r'^::prost::alloc::vec::Vec<\s*(.*)\s*>$', r'\1', path)
    path = re.sub(r'^::prost::alloc::boxed::Box<\s*(.*)\s*>$', r'\1', path)
    path = path.strip().rstrip(",").strip()
    parts = [p for p in path.split("::") if p]
    base = module.split("::")
    while parts and parts[0] == "super":
        parts.pop(0)
        base.pop()
    return "::".join(base + parts)


def const_name(full):
    return re.sub(r'[^A-Z0-9]+', '_', snake(full.replace("::", "_")).upper()).strip("_")


def main():
    pb = load_pb(sys.argv[1])
    per_file, everywhere = load_json_names(sys.argv[2])
    wanted, order = set(), []
    todo = [f"{m}::{msg}" for _, _, m, msg in ROOTS]
    out_fields = {}
    problems = []
    while todo:
        full = todo.pop()
        if full in wanted or full in SPECIAL:
            continue
        wanted.add(full)
        order.append(full)
        module, name = full.rsplit("::", 1)
        names = per_file.get(snake(name), {})
        fields = []
        for tag, rust, attr, ty in pb[full]:
            json = names.get(rust)
            if json is None:
                squashed = {k.replace("_", ""): v for k, v in names.items()}
                json = squashed.get(rust.replace("_", ""))
            if json is None and rust in INLINE:
                json = ""
            if json is None:
                candidates = everywhere.get(rust, set())
                if len(candidates) == 1:
                    json = next(iter(candidates))
                else:
                    parts = rust.split("_")
                    json = parts[0] + "".join(p.title() for p in parts[1:])
                    problems.append(f"{full}.{rust}: guessed {json} ({sorted(candidates)})")
            repeated = "repeated" in attr
            kind = attr.split(",")[0].strip()
            if kind.startswith("btree_map") or kind.startswith("map"):
                value = re.search(r'map = "string, (\w+)', attr).group(1)
                if value == "string":
                    t = "Ty::StrMap"
                elif value == "bytes":
                    t = "Ty::BytesMap"
                elif value == "message":
                    target = resolve(module, re.search(r'BTreeMap<\s*[^,]+,\s*([^,>]+?)\s*,?\s*>$', ty).group(1))
                    if SPECIAL.get(target) == "Quantity":
                        t = "Ty::QuantityMap"
                    elif SPECIAL.get(target) == "Time":
                        t = "Ty::TimeMap"
                    else:
                        t = f"Ty::MessageMap(&{const_name(target)})"
                        todo.append(target)
                else:
                    raise SystemExit(f"map of {value} in {full}.{rust}")
                repeated = False
            elif kind == "message":
                target = resolve(module, ty)
                special = SPECIAL.get(target)
                if special:
                    t = f"Ty::{special}"
                else:
                    t = f"Ty::Message(&{const_name(target)})"
                    todo.append(target)
            elif kind == "string":
                t = "Ty::Str"
            elif kind in ("int32", "int64"):
                t = "Ty::Int"
            elif kind == "bool":
                t = "Ty::Bool"
            elif kind.startswith("bytes"):
                t = "Ty::Bytes"
            elif kind == "double":
                t = "Ty::Double"
            else:
                raise SystemExit(f"{kind} in {full}.{rust}")
            fields.append((tag, json, t, repeated))
        # In number order, the order Go's marshaller writes them in.
        out_fields[full] = sorted(fields)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)

    print("// Generated by mesh-sim/tools/gen_protobuf_schema.py from k8s-pb 0.8.0")
    print("// (field numbers) and k8s-openapi 0.29.0 (JSON names). Do not edit.")
    print("// An empty `json` is a Go struct embedded inline: its fields are the parent's.")
    print("")
    print("use super::{Field, Schema, Ty};")
    print("")
    print("/// (apiVersion, kind) -> the message of that kind.")
    print("pub static KINDS: &[(&str, &str, &Schema)] = &[")
    for api_version, kind, module, msg in ROOTS:
        print(f'    ("{api_version}", "{kind}", &{const_name(module + "::" + msg)}),')
    print("];")
    for full in sorted(order):
        print("")
        print(f"pub static {const_name(full)}: Schema = Schema {{")
        print(f'    name: "{full.split("::", 1)[1] if full.startswith("api::") else full}",')
        print("    fields: &[")
        for tag, json, t, repeated in out_fields[full]:
            print(f'        Field {{ number: {tag}, json: "{json}", ty: {t}, repeated: {str(repeated).lower()} }},')
        print("    ],")
        print("};")


main()
