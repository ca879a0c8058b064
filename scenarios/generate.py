import json, random
R = random.Random(7)
def farm(away=True):
    hosts = []
    # fast SMP servers people also use interactively
    for i in range(1, 5):
        h = {"name": f"sun{i}", "cpus": 8, "power": 3, "slots": 8}
        if i == 1: h["background"] = [{"from_s": 0, "to_s": 600, "load": 2.0}]
        if i == 3: h["background"] = [{"from_s": 30, "to_s": 90, "load": 4.0}]
        hosts.append(h)
    # idle Linux SMP boxes
    for i in range(1, 4):
        hosts.append({"name": f"lin{i}", "cpus": 4, "power": 2, "slots": 4})
    # slow desktops; owners work on some, some leave and come back
    for i in range(1, 25):
        h = {"name": f"desk{i:02d}", "cpus": 2, "power": 1, "slots": 2}
        if i % 5 == 0:
            h["background"] = [{"from_s": 10*i % 60, "to_s": 10*i % 60 + 40, "load": 1.0}]
        if away and i % 4 == 1:
            a = 5 + (i * 7) % 50
            h["away"] = [{"from_s": a, "to_s": a + 20 + (i*13) % 40}]
        hosts.append(h)
    return hosts

alone = {"name": "alone", "seed": 1, "hosts": farm(),
         "users": [{"name": "vic", "local_slots": 2, "local_power": 1,
                    "builds": [{"start_s": 0, "jobs": 2500, "parallel": 48, "job_s": {"mean": 2.0, "sd": 1.0}}]}]}

users = []
for i, st in enumerate([0, 15, 30]):
    users.append({"name": f"heavy{i+1}", "builds": [{"start_s": st, "jobs": 2000, "parallel": 64, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i, st in enumerate([5, 40]):
    users.append({"name": f"mid{i+1}", "builds": [{"start_s": st, "jobs": 200, "parallel": 16, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i in range(15):
    bs = []
    for k in range(R.choice([2, 3])):
        bs.append({"start_s": round(R.uniform(0, 100), 1), "jobs": 20, "parallel": 8, "job_s": {"mean": 2.0, "sd": 1.0}})
    bs.sort(key=lambda b: b["start_s"])
    users.append({"name": f"light{i+1:02d}", "builds": bs})
team20 = {"name": "team20", "seed": 20, "hosts": farm(), "users": users}

hv = [{"name": "heavy", "builds": [{"start_s": 0, "jobs": 2000, "parallel": 64, "job_s": {"mean": 2.0, "sd": 1.0}}]}]
for i in range(4):
    hv.append({"name": f"light{i+1}", "builds": [{"start_s": 5 + 12*k + 3*i, "jobs": 3 + 2*((i+k) % 4), "parallel": 4, "job_s": {"mean": 2.0, "sd": 1.0}} for k in range(5)]})
small = [h for h in farm(away=False) if h["name"] in ("sun1", "sun2", "lin1", "lin2", "lin3") or h["name"] in [f"desk{i:02d}" for i in range(1, 7)]]
hvl = {"name": "heavy-vs-light", "seed": 3, "hosts": small, "users": hv}

for n, sc in [("alone", alone), ("team20", team20), ("heavy-vs-light", hvl)]:
    with open(f"scenarios/{n}.json", "w") as f:
        json.dump(sc, f, indent=1)
        f.write("\n")
