//! Synthetic but realistic watch traffic: ~4.5 KB pods as kube-apiserver writes them
//! (labels, annotations incl. last-applied-configuration, ownerReferences, managedFields,
//! containers, status with conditions). Shared by the decoder tests, `benches/decode.rs`
//! and the parser shoot-out through `#[path]` includes.
#![allow(dead_code)]

/// One pod object (JSON, single line). `i` varies names, uids, RVs and a few shapes.
pub fn pod(i: usize) -> String {
    let ns = format!("team-{}", i % 17);
    let name = format!("web-{:x}-{}", i.wrapping_mul(2654435761) & 0xffffff, i);
    let uid = format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i, i % 65536, i % 4096, (i * 7) % 4096, i * 31);
    let rv = 100_000 + i;
    let node = format!("node-{}", i % 50);
    let last_applied = format!(
        r#"{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"annotations\":{{}},\"labels\":{{\"app\":\"web\",\"tier\":\"frontend\"}},\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"containers\":[{{\"image\":\"registry.example.com/web:1.{i}\",\"name\":\"web\",\"ports\":[{{\"containerPort\":8080}}]}}]}}}}\n"#
    );
    let owner = if i % 5 == 4 {
        String::new()
    } else {
        format!(
            r#","ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-{h:x}","uid":"{h:08x}-aaaa-4bbb-8ccc-{h:012x}","controller":true,"blockOwnerDeletion":true}}]"#,
            h = i % 97
        )
    };
    let note = if i % 13 == 0 { "caf\u{e9} \u{1F680} \\u003cb\\u003e" } else { "plain" };
    format!(
        concat!(
            r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","generateName":"web-","namespace":"{ns}","uid":"{uid}","resourceVersion":"{rv}","creationTimestamp":"2026-11-03T10:15:{s:02}Z","#,
            r#""labels":{{"app":"web","pod-template-hash":"{h:x}","tier":"frontend","version":"v{v}"}},"#,
            r#""annotations":{{"kubectl.kubernetes.io/last-applied-configuration":"{la}","kfast.io/note":"{note}","prometheus.io/port":"9102","prometheus.io/scrape":"true"}}{owner},"#,
            r#""managedFields":[{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-11-03T10:15:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:generateName":{{}},"f:labels":{{".":{{}},"f:app":{{}},"f:pod-template-hash":{{}}}},"f:ownerReferences":{{".":{{}},"k:{{\"uid\":\"{uid}\"}}":{{}}}}}},"f:spec":{{"f:containers":{{"k:{{\"name\":\"web\"}}":{{".":{{}},"f:image":{{}},"f:imagePullPolicy":{{}},"f:name":{{}},"f:ports":{{}},"f:resources":{{}}}}}},"f:dnsPolicy":{{}},"f:restartPolicy":{{}}}}}}}},"#,
            r#"{{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-03T10:15:05Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{"k:{{\"type\":\"Ready\"}}":{{".":{{}},"f:lastProbeTime":{{}},"f:lastTransitionTime":{{}},"f:status":{{}},"f:type":{{}}}}}},"f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},"f:podIP":{{}},"f:startTime":{{}}}}}},"subresource":"status"}}]}},"#,
            r#""spec":{{"volumes":[{{"name":"kube-api-access-{h:x}","projected":{{"sources":[{{"serviceAccountToken":{{"expirationSeconds":3607,"path":"token"}}}},{{"configMap":{{"name":"kube-root-ca.crt","items":[{{"key":"ca.crt","path":"ca.crt"}}]}}}}],"defaultMode":420}}}}],"#,
            r#""containers":[{{"name":"web","image":"registry.example.com/web:1.{i}","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"POD_NAME","valueFrom":{{"fieldRef":{{"apiVersion":"v1","fieldPath":"metadata.name"}}}}}},{{"name":"GOMAXPROCS","value":"2"}}],"resources":{{"limits":{{"cpu":"500m","memory":"256Mi"}},"requests":{{"cpu":"250m","memory":"128Mi"}}}},"volumeMounts":[{{"name":"kube-api-access-{h:x}","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}}],"livenessProbe":{{"httpGet":{{"path":"/healthz","port":8080,"scheme":"HTTP"}},"initialDelaySeconds":3,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}],"#,
            r#""restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","serviceAccount":"default","nodeName":"{node}","securityContext":{{}},"schedulerName":"default-scheduler","tolerations":[{{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}},{{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"}},"#,
            r#""status":{{"phase":"Running","conditions":[{{"type":"PodReadyToStartContainers","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-03T10:15:03Z"}},{{"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-03T10:15:00Z"}},{{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-03T10:15:05Z"}},{{"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-03T10:15:05Z"}},{{"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-03T10:15:00Z"}}],"#,
            r#""hostIP":"10.0.{a}.{b}","hostIPs":[{{"ip":"10.0.{a}.{b}"}}],"podIP":"10.244.{a}.{c}","podIPs":[{{"ip":"10.244.{a}.{c}"}}],"startTime":"2026-11-03T10:15:00Z","containerStatuses":[{{"name":"web","state":{{"running":{{"startedAt":"2026-11-03T10:15:04Z"}}}},"lastState":{{}},"ready":true,"restartCount":{rc},"image":"registry.example.com/web:1.{i}","imageID":"registry.example.com/web@sha256:{sha}","containerID":"containerd://{sha}","started":true}}],"qosClass":"Burstable"}}}}"#
        ),
        name = name, ns = ns, uid = uid, rv = rv, s = i % 60, h = i % 97, v = i % 4, la = last_applied,
        note = note, owner = owner, node = node, i = i, a = i % 250, b = (i / 250) % 250, c = (i * 3) % 250,
        rc = i % 3, sha = format!("{:064x}", (i as u128).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)),
    )
}

pub fn event_line(kind: &str, obj: &str) -> String {
    format!("{{\"type\":\"{kind}\",\"object\":{obj}}}\n")
}

/// The event lines of a watch: mostly ADDED/MODIFIED, some DELETED, a bookmark now and then.
pub fn events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 100 == 99 {
                return event_line(
                    "BOOKMARK",
                    &format!(r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"resourceVersion":"{}","creationTimestamp":null}}}}"#, 100_000 + i),
                );
            }
            let kind = match i % 10 { 0..=5 => "ADDED", 6..=8 => "MODIFIED", _ => "DELETED" };
            event_line(kind, &pod(i))
        })
        .collect()
}

/// A chunked HTTP/1.1 watch response, one chunk per event (as kube-apiserver flushes).
pub fn chunked_response(lines: &[String], last_chunk: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nAudit-Id: 3f1c\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Thu, 03 Dec 2026 15:00:00 GMT\r\n\r\n",
    );
    for l in lines {
        out.extend_from_slice(format!("{:x}\r\n", l.len()).as_bytes());
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if last_chunk {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}
