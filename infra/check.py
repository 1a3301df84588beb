"""Offline checks of infra/template.yaml that need Python tools (run by scripts/check-infra.sh).

1. Translates the SAM template to plain CloudFormation with aws-sam-translator (cfn-lint no
   longer expands SAM, so it must see the translated template) and writes it to OUT.
2. Reads every EventBridge rule's pattern from the translated template, puts the rules on
   moto's EventBridge with an SQS target each, and sends every event in events/ through it:
   each event the handler acts on must be delivered by a rule, each it ignores by its content
   by none.
   What the handler does with each event comes from the binary itself (`replay --json` of the
   command line's build: the Lambda's build has no command line; the decisions are the same code).

Usage: python infra/check.py BINARY OUT
"""

import json
import os
import subprocess
import sys

import boto3
from moto import mock_aws
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NoManagedPolicies:
    """The template names no managed policy; translating must not call IAM."""

    def load(self):
        return {}


def translate(out_path):
    # The translator asks boto3 for a region to fill pseudo parameters; any will do offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    with open(os.path.join(ROOT, "infra", "template.yaml")) as f:
        sam = yaml_parse(f.read())
    # `sam deploy` uploads the local CodeUri and puts its S3 address there; do the same.
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged-by-sam/bootstrap.zip"
    cfn = transform(sam, {}, NoManagedPolicies())
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(cfn, f, indent=1)
    return cfn


class Delivery:
    """The template's rules on moto's EventBridge, each with an SQS queue as its target:
    `put_events` then runs moto's own pattern matching on the delivery path. (moto 5.2.5 does
    not implement the TestEventPattern API.)"""

    def __init__(self, rules):
        self.events = boto3.client("events", region_name="eu-west-1")
        self.sqs = boto3.client("sqs", region_name="eu-west-1")
        self.queues = {}
        for name, pattern in rules.items():
            url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.events.put_rule(Name=name, EventPattern=json.dumps(pattern))
            self.events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
            self.queues[name] = url

    def __call__(self, event):
        """The names of the rules that deliver `event`."""
        out = self.events.put_events(Entries=[{
            "Source": event["source"], "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]), "Resources": event.get("resources", []),
        }])
        assert out["FailedEntryCount"] == 0, out
        matched = []
        for name, url in self.queues.items():
            msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for m in msgs:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if msgs:
                matched.append(name)
        return matched


def as_eventbridge(value):
    """A bare CloudTrail record as EventBridge delivers it; envelopes as they are."""
    if "detail-type" in value:
        return value
    service = value.get("eventType") == "AwsServiceEvent"
    return {
        "version": "0", "id": value.get("eventID", "x"), "source": "aws.ecr",
        "detail-type": "AWS Service Event via CloudTrail" if service else "AWS API Call via CloudTrail",
        "account": value.get("recipientAccountId", "111122223333"), "time": value.get("eventTime", "2026-01-01T00:00:00Z"),
        "region": value.get("awsRegion", "eu-west-1"), "resources": [], "detail": value,
    }


def main(binary, out_path):
    cfn = translate(out_path)
    # Rules with an event pattern; the reconcile schedule has none.
    rules = {
        name: r["Properties"]["EventPattern"]
        for name, r in cfn["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    }
    assert rules, "the template defines no EventBridge rule"
    run = subprocess.run([binary, "replay", "--json", os.path.join(ROOT, "events")], cwd=ROOT, capture_output=True, text=True)
    reports = [json.loads(line) for line in run.stdout.splitlines()]
    assert reports and run.returncode == 0, f"replay failed:\n{run.stdout}\n{run.stderr}"
    # The events as written, in the order replay read them (file, then index in the file).
    events = []
    for name in sorted(os.listdir(os.path.join(ROOT, "events"))):
        if not name.endswith(".json") or name == "scenario.json":
            continue
        with open(os.path.join(ROOT, "events", name)) as f:
            data = json.load(f)
        items = data["Records"] if isinstance(data, dict) and "Records" in data else data if isinstance(data, list) else [data]
        # A story step ({"replay": "apply"|"deliver", "event": ...}) carries its event inside.
        items = [v["event"] if isinstance(v, dict) and set(v) == {"replay", "event"} else v for v in items]
        events.extend(as_eventbridge(v) for v in items)
    assert len(events) == len(reports), f"{len(events)} events, {len(reports)} reports"
    problems = []
    with mock_aws():
        deliver = Delivery(rules)
        for report, event in zip(reports, events):
            if report.get("applied"):
                # Made to happen in the embedded world; its delivery is a later step.
                continue
            acted = "incident" in report["report"]
            matched = deliver(event)
            if acted and not matched:
                problems.append(f"{report['input']}: the handler acts on it but no rule delivers it")
            if not acted and matched:
                problems.append(f"{report['input']}: the handler ignores it ({report['report'].get('ignored')}) but {matched} deliver it")
            print(f"  {report['input']:<52} {'acted on' if acted else 'ignored':<9} rules: {', '.join(matched) or '-'}")
    if problems:
        sys.exit("EventBridge patterns disagree with the handler:\n" + "\n".join(problems))
    print(f"patterns: {len(rules)} rules, {len(events)} events agree with the handler")
    check_stream_filter(cfn)
    check_dashboards(cfn)


def check_dashboards(cfn):
    """Each dashboard's body is JSON once CloudFormation has substituted its variables."""
    import re
    for name, r in cfn["Resources"].items():
        if r["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = r["Properties"]["DashboardBody"]
        text = body["Fn::Sub"][0] if isinstance(body, dict) else body
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["widgets"]
        assert widgets, f"{name}: no widget"
        print(f"dashboard {name}: {len(widgets)} widgets, valid JSON")


def check_stream_filter(cfn):
    """The registry stream's filter (Lambda event filtering, EventBridge pattern syntax, read
    here with moto's matcher) delivers tag and rule items and never the guard's history or
    ledger records, nor removals."""
    from moto.events.models import EventPattern

    mapping = cfn["Resources"]["RegistryStream"]["Properties"]
    [pattern] = [f["Pattern"] for f in mapping["FilterCriteria"]["Filters"]]
    matcher = EventPattern.load(pattern)

    def record(name, partition):
        return {"eventName": name, "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {"repository": {"S": partition}, "tag": {"S": "t"}}}}

    cases = [
        (record("INSERT", "123456789012/eu-west-1/web"), True),
        (record("MODIFY", "098765432109/us-east-1/team/api"), True),
        (record("INSERT", "rule#"), True),
        (record("INSERT", "history#123456789012/eu-west-1/web:prod"), False),
        (record("MODIFY", "ledger#6f2a1c3e"), False),
        (record("REMOVE", "123456789012/eu-west-1/web"), False),
    ]
    wrong = [(r["eventName"], r["dynamodb"]["Keys"]["repository"]["S"]) for r, want in cases if matcher.matches_event(r) != want]
    if wrong:
        sys.exit(f"the registry stream filter is wrong for: {wrong}")
    print(f"stream filter: {len(cases)} records delivered or dropped as they should be")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
