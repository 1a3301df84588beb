"""The project measures itself (not a test): the release binary against moto_server (through
tests/moto_launcher.py), each invocation a new `ecr-tag-guard replay --aws` process, as Lambda
would start them. Prints three tables:

1. the duplicate storm: one delete of a protected tag, the same event delivered N times at
   once: restores, pages, failed invocations;
2. one change reported many ways at once: CloudTrail's record and ECR's own event, with
   different ids, all at once;
3. faults: a small proxy between the binary and moto answers a share of requests with
   throttling (400) or 5xx; each incident is delivered with Lambda's retries (three attempts
   at most): restored, dead-lettered (every attempt failed: the event is in the failure
   destination, whose alarm pages), silent losses (neither restored, paged nor
   dead-lettered), double pages.

Pages are counted from an SQS queue subscribed to the topic. Usage:
scripts/measure.sh [STORM] [INCIDENTS] [FAULT_RATE]
"""

import http.client
import http.server
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from moto_server import ROOT, moto, sha

BIN = os.path.join(ROOT, "target", "release", "ecr-tag-guard")
ACCOUNT, REGION = "123456789012", "eu-west-1"


class Faults:
    """What the proxy injects: a share of requests answered with a fault instead of moto."""

    rate = 0.0
    injected = 0
    lock = threading.Lock()
    rng = random.Random(12)

    @classmethod
    def pick(cls, target):
        with cls.lock:
            if cls.rng.random() >= cls.rate:
                return None
            cls.injected += 1
            if target and cls.rng.random() < 0.5:
                # JSON protocols (ECR, DynamoDB): throttling, which the SDK retries.
                return 400, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded (injected)"})
            return 503, json.dumps({"__type": "ServiceUnavailable", "message": "injected"})


def proxy_to(moto_port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = Faults.pick(self.headers.get("X-Amz-Target"))
            if fault:
                status, text = fault
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            conn = http.client.HTTPConnection("127.0.0.1", moto_port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class World:
    def __init__(self, moto_url, proxy_url):
        kw = dict(endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ecr, self.ddb = boto3.client("ecr", **kw), boto3.client("dynamodb", **kw)
        self.sns, self.sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
        kms = boto3.client("kms", **kw)
        # The pin key, as the template creates it: `protect` seals the pins it writes.
        key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["Arn"]
        self.ddb.create_table(TableName="tag-guard", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("repository", "tag")],
                              KeySchema=[{"AttributeName": "repository", "KeyType": "HASH"}, {"AttributeName": "tag", "KeyType": "RANGE"}])
        self.topic = self.sns.create_topic(Name="pages")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="on-call")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn)
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_REGION=REGION, AWS_ENDPOINT_URL=proxy_url, AWS_EC2_METADATA_DISABLED="true",
                        TAG_GUARD_TABLE="tag-guard", TAG_GUARD_TOPIC_ARN=self.topic, TAG_GUARD_LOG="error",
                        TAG_GUARD_PIN_KEY=key)
        # Set-up calls go straight to moto, not through the fault proxy.
        self.setup_env = dict(self.env, AWS_ENDPOINT_URL=moto_url)
        self.dir = tempfile.mkdtemp()

    def protect(self, repo):
        """A repository with `prod` pinned by `protect` (sealed) and deleted; returns the digest."""
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": sha(repo)},
                               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": sha("l" + repo)}]})
        self.ecr.create_repository(repositoryName=repo)
        for tag in ("prod", "keep"):
            self.ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)
        subprocess.run([BIN, "protect", f"{ACCOUNT}/{REGION}/{repo}:prod"], env=self.setup_env,
                       check=True, capture_output=True)
        self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "prod"}])
        return sha(manifest)

    def tag_back(self, repo, digest):
        images = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "prod"}])["images"]
        return any(i["imageId"].get("imageDigest") == digest for i in images)

    def event_file(self, name, event):
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            json.dump(event, f)
        return path

    def invoke(self, path):
        """One invocation: a new process; True when it succeeded."""
        run = subprocess.run([BIN, "replay", "--aws", path], env=self.env, capture_output=True, text=True)
        return run.returncode == 0

    def pages(self):
        """Every page delivered so far, by repository."""
        by_repo = {}
        while True:
            out = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            msgs = out.get("Messages", [])
            if not msgs:
                return by_repo
            for m in msgs:
                body = json.loads(m["Body"])
                repo = body.get("MessageAttributes", {}).get("repository", {}).get("Value", "-")
                by_repo[repo] = by_repo.get(repo, 0) + 1
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])

    def restores(self, repo):
        """Restore records in the history of `repo:prod`."""
        out = self.ddb.query(TableName="tag-guard", KeyConditionExpression="repository = :r",
                             ExpressionAttributeValues={":r": {"S": f"history#{ACCOUNT}/{REGION}/{repo}:prod"}})
        return sum(1 for i in out["Items"] if i.get("outcome", {}).get("S") == "restored")


def cloudtrail(repo, digest, event_id):
    record = {"eventVersion": "1.08", "eventSource": "ecr.amazonaws.com", "eventName": "BatchDeleteImage",
              "awsRegion": REGION, "eventID": event_id, "eventTime": "2026-11-30T12:00:00Z", "recipientAccountId": ACCOUNT,
              "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/tired-human"},
              "requestParameters": {"registryId": ACCOUNT, "repositoryName": repo, "imageIds": [{"imageTag": "prod"}]},
              "responseElements": {"imageIds": [{"imageTag": "prod", "imageDigest": digest}], "failures": []}}
    return {"version": "0", "id": "eb-" + event_id, "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr",
            "account": ACCOUNT, "region": REGION, "time": "2026-11-30T12:00:00Z", "detail": record}


def image_action(repo, digest, event_id):
    return {"version": "0", "id": event_id, "detail-type": "ECR Image Action", "source": "aws.ecr", "account": ACCOUNT,
            "region": REGION, "time": "2026-11-30T12:00:00Z", "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": repo, "image-digest": digest,
                       "action-type": "DELETE", "image-tag": "prod"}}


def all_at_once(world, paths):
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(world.invoke, paths))


def storm(world, n):
    digest = world.protect("storm")
    path = world.event_file("storm", cloudtrail("storm", digest, "storm-1"))
    start = time.time()
    ok = all_at_once(world, [path] * n)
    took = time.time() - start
    pages = world.pages().get(f"{ACCOUNT}/{REGION}/storm", 0)
    return [("deliveries", n), ("restored (tag back)", int(world.tag_back("storm", digest))),
            ("restores in history", world.restores("storm")), ("pages", pages),
            ("failed invocations", ok.count(False)), ("wall time (s)", f"{took:.1f}")]


def many_ways(world, n):
    digest = world.protect("many")
    paths = []
    for i in range(n):
        ev = cloudtrail("many", digest, f"many-ct-{i}") if i % 2 == 0 else image_action("many", digest, f"many-ia-{i}")
        paths.append(world.event_file(f"many-{i}", ev))
    ok = all_at_once(world, paths)
    pages = world.pages().get(f"{ACCOUNT}/{REGION}/many", 0)
    return [("events (CloudTrail and ECR's own, distinct ids)", n),
            ("restored (tag back)", int(world.tag_back("many", digest))),
            ("restores in history", world.restores("many")), ("pages", pages),
            ("failed invocations", ok.count(False))]


def faults(world, incidents, rate):
    repos = [f"svc-{i:02d}" for i in range(incidents)]
    digests = {r: world.protect(r) for r in repos}
    paths = {r: world.event_file(r, cloudtrail(r, digests[r], f"fault-{r}")) for r in repos}
    Faults.rate = rate
    attempts, dead = 0, set()
    for r in repos:
        for _ in range(3):  # the first delivery and Lambda's two retries
            attempts += 1
            if world.invoke(paths[r]):
                break
        else:
            dead.add(r)
    Faults.rate = 0.0
    pages = world.pages()
    restored = sum(1 for r in repos if world.tag_back(r, digests[r]))
    paged = {r: pages.get(f"{ACCOUNT}/{REGION}/{r}", 0) for r in repos}
    # A dead-lettered event is not silent: it sits in the failure destination, whose alarm pages.
    silent = sum(1 for r in repos if not world.tag_back(r, digests[r]) and paged[r] == 0 and r not in dead)
    doubles = sum(1 for r in repos if paged[r] > 1)
    return [("incidents", incidents), ("fault rate", f"{rate:.0%}"), ("faults injected", Faults.injected),
            ("invocations", attempts), ("restored", restored), ("dead-lettered (3 attempts failed)", len(dead)),
            ("silent losses", silent), ("double pages", doubles)]


def table(title, rows):
    print(title)
    for name, value in rows:
        print(f"  {name:<52}{value:>8}")
    print()


def main(n_storm, incidents, rate):
    with moto() as port:
        proxy = proxy_to(port)
        world = World(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{proxy.server_address[1]}")
        print("ecr-tag-guard measures itself: release binary, one process per invocation, moto_server\n")
        table(f"1. duplicate storm: one delete, the same event delivered {n_storm} times at once", storm(world, n_storm))
        table("2. one change reported many ways at once", many_ways(world, 10))
        table("3. injected throttling/5xx, Lambda-style retries", faults(world, incidents, rate))
        proxy.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 50, int(args[1]) if len(args) > 1 else 30, float(args[2]) if len(args) > 2 else 0.3)
