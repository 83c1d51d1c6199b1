#!/usr/bin/env python3
"""The local stack, built from template.yaml: the one list of tables, queues and settings.

  stack.py provision --endpoint URL --stage STAGE --env-out FILE --sources-out FILE
      Creates every DynamoDB table (keys, GSIs, TTL) and SQS queue (attributes, redrive) the
      template declares on the emulator, idempotently; writes the functions' resolved
      environment (plus emulator endpoint and credentials) and the event-source mappings.
  stack.py wait --endpoint URL   waits until the emulator answers.
  stack.py free-port             prints a free loopback port.
"""
import argparse
import json
import re
import socket
import sys
import time
import urllib.request

import boto3
import yaml

ACCOUNT = "123456789012"
REGION = "eu-central-1"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short tags (!Ref, !GetAtt, !Sub...) as their long forms."""


def _tag(name):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short in ["Ref", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
               "FindInMap", "ImportValue", "Base64", "GetAZs", "Condition", "Cidr", "Transform"]:
    CfnLoader.add_constructor("!" + _short, _tag("Ref" if _short == "Ref" else ("Condition" if _short == "Condition" else "Fn::" + _short)))


def load_template(path="template.yaml"):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


class Stack:
    def __init__(self, template, endpoint, stage, region=REGION):
        self.t = template
        self.resources = template.get("Resources", {})
        self.region = region
        self.endpoint = endpoint
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params["Stage"] = stage
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.queue_urls = {}

    # -- intrinsic functions ------------------------------------------------------------
    def pseudo(self, name):
        return {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "onecrm-" + self.params["Stage"]}.get(name)

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        if self.pseudo(name) is not None:
            return self.pseudo(name)
        res = self.resources[name]
        props = res.get("Properties", {})
        if res["Type"] == "AWS::DynamoDB::Table":
            return self.resolve(props["TableName"])
        if res["Type"] == "AWS::SQS::Queue":
            return self.queue_urls.get(name) or self.queue_url(name)
        return name

    def get_att(self, name, attr):
        res = self.resources[name]
        props = res.get("Properties", {})
        if res["Type"] == "AWS::SQS::Queue":
            queue_name = self.resolve(props["QueueName"])
            return {"Arn": f"arn:aws:sqs:{self.region}:{ACCOUNT}:{queue_name}", "QueueName": queue_name,
                    "QueueUrl": self.ref(name)}[attr]
        if res["Type"] == "AWS::DynamoDB::Table":
            table = self.resolve(props["TableName"])
            return {"Arn": f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{table}"}[attr]
        raise KeyError(f"GetAtt {name}.{attr} is not emulated")

    def sub(self, text, extra=None):
        out, i = "", 0
        while i < len(text):
            if text.startswith("${", i):
                j = text.index("}", i)
                key = text[i + 2:j]
                if extra and key in extra:
                    out += str(self.resolve(extra[key]))
                elif "." in key and key.split(".")[0] in self.resources:
                    out += str(self.get_att(*key.split(".", 1)))
                else:
                    out += str(self.ref(key))
                i = j + 1
            else:
                out += text[i]
                i += 1
        return out

    def resolve(self, v):
        if isinstance(v, dict) and len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                return self.get_att(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if k == "Fn::Sub":
                return self.sub(arg) if isinstance(arg, str) else self.sub(arg[0], arg[1])
            if k == "Fn::Join":
                return arg[0].join(str(self.resolve(x)) for x in arg[1])
        if isinstance(v, dict):
            return {k: self.resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        return v

    # -- resources ----------------------------------------------------------------------
    def queue_url(self, logical_id):
        name = self.resolve(self.resources[logical_id]["Properties"]["QueueName"])
        return f"{self.endpoint}/{ACCOUNT}/{name}"

    def of_type(self, kind):
        return [(k, r) for k, r in self.resources.items() if r.get("Type") == kind]

    def create_tables(self):
        existing = set(self.ddb.list_tables().get("TableNames", []))
        for _, res in self.of_type("AWS::DynamoDB::Table"):
            p = self.resolve(res["Properties"])
            name = p["TableName"]
            if name not in existing:
                args = {k: p[k] for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode") if k in p}
                if p.get("GlobalSecondaryIndexes"):
                    args["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
                self.ddb.create_table(**args)
            ttl = p.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                current = self.ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
                if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                    self.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"], "Enabled": True})

    def create_queues(self):
        queues = dict(self.of_type("AWS::SQS::Queue"))
        # Dead-letter queues first: a redrive policy names its target's ARN.
        order = sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {}))
        for logical_id in order:
            p = self.resolve(queues[logical_id]["Properties"])
            attributes = {}
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                        "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication"):
                if key in p:
                    attributes[key] = str(p[key]).lower() if isinstance(p[key], bool) else str(p[key])
            if "RedrivePolicy" in p:
                policy = dict(p["RedrivePolicy"])
                policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
                attributes["RedrivePolicy"] = json.dumps(policy)
            url = self.sqs.create_queue(QueueName=p["QueueName"], Attributes=attributes)["QueueUrl"]
            self.queue_urls[logical_id] = url

    def functions(self):
        return self.of_type("AWS::Serverless::Function")

    def function_env(self, res):
        env = dict(self.t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        env.update(res.get("Properties", {}).get("Environment", {}).get("Variables", {}))
        return {k: str(self.resolve(v)) for k, v in env.items()}

    @staticmethod
    def binary(logical_id, res):
        return res.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id)

    def env(self):
        """One file for every function (cargo lambda watch takes one): each function's own
        variables scoped as <FUNCTION>__<NAME> (the functions read those first, see
        shared/adapters/src/config.rs), plus the plain name wherever all functions agree, for
        tools and tests."""
        out = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        values = {}
        for logical_id, res in self.functions():
            scope = re.sub(r"[^A-Za-z0-9]", "_", self.binary(logical_id, res)).upper()
            for k, v in self.function_env(res).items():
                out[f"{scope}__{k}"] = v
                values.setdefault(k, set()).add(v)
        for k, vs in values.items():
            if len(vs) == 1:
                out[k] = next(iter(vs))
        for logical_id, _ in self.of_type("AWS::SQS::Queue"):
            out[f"QUEUE_URL_{logical_id}"] = self.ref(logical_id)
        for logical_id, _ in self.of_type("AWS::DynamoDB::Table"):
            out[f"TABLE_{logical_id}"] = self.ref(logical_id)
        return out

    def sources(self):
        out = []
        for logical_id, res in self.functions():
            binary = self.binary(logical_id, res)
            for event in res.get("Properties", {}).get("Events", {}).values():
                p = event.get("Properties", {})
                if event["Type"] == "SQS":
                    arn = self.resolve(p["Queue"])
                    queue_id = next(k for k, _ in self.of_type("AWS::SQS::Queue") if self.get_att(k, "Arn") == arn)
                    out.append({"kind": "sqs", "function_logical_id": logical_id, "binary": binary,
                                "queue_url": self.ref(queue_id), "queue_arn": arn,
                                "batch_size": int(p.get("BatchSize", 10)),
                                "maximum_batching_window_seconds": int(p.get("MaximumBatchingWindowInSeconds", 0)),
                                "report_batch_item_failures": "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                                "maximum_concurrency": int((p.get("ScalingConfig") or {}).get("MaximumConcurrency", 2)),
                                "env": self.function_env(res)})
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    out.append({"kind": "schedule", "function_logical_id": logical_id, "binary": binary,
                                "expression": self.resolve(p.get("Schedule") or p.get("ScheduleExpression")),
                                "timezone": self.resolve(p.get("ScheduleExpressionTimezone", "UTC")),
                                "input": self.resolve(p.get("Input", "{}")), "env": self.function_env(res)})
        return out

    def skipped(self):
        handled = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Serverless::Function"}
        return sorted({r["Type"] for r in self.resources.values()} - handled)


def wait(endpoint, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"the emulator at {endpoint} did not answer within {timeout:.0f}s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_env(path, env):
    with open(path, "w", encoding="utf-8") as f:
        for k, v in env.items():
            f.write(f"{k}={v}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("provision")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--stage", required=True)
    p.add_argument("--env-out", required=True)
    p.add_argument("--sources-out", required=True)
    p.add_argument("--region", default=REGION)
    p.add_argument("--template", default="template.yaml")
    w = sub.add_parser("wait")
    w.add_argument("--endpoint", required=True)
    w.add_argument("--timeout", type=float, default=20)
    sub.add_parser("free-port")
    args = ap.parse_args()

    if args.command == "free-port":
        print(free_port())
    elif args.command == "wait":
        wait(args.endpoint, args.timeout)
    else:
        stack = Stack(load_template(args.template), args.endpoint, args.stage, args.region)
        stack.create_tables()
        stack.create_queues()
        write_env(args.env_out, stack.env())
        with open(args.sources_out, "w", encoding="utf-8") as f:
            json.dump(stack.sources(), f, indent=2)
        print(f"stack '{args.stage}' ready on {args.endpoint}: {len(stack.of_type('AWS::DynamoDB::Table'))} tables, "
              f"{len(stack.of_type('AWS::SQS::Queue'))} queues; not emulated: {', '.join(stack.skipped()) or 'none'}")


if __name__ == "__main__":
    main()
