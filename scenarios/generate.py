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

# crunch: team20's shape over four minutes: 3 heavy users (4000-file
# builds at -j64), 5 medium (two 300-file builds at -j16), 12 light (3-5
# builds of 20-40 files at -j8); the servers' owners load them on and off,
# desktops leave and come back several times.
def farm_long():
    hosts = []
    bg = {1: [(0, 400, 2.0)], 2: [(120, 200, 3.0)], 3: [(30, 90, 4.0), (150, 260, 2.0)], 4: []}
    for i in range(1, 5):
        h = {"name": f"sun{i}", "cpus": 8, "power": 3, "slots": 8}
        if bg[i]:
            h["background"] = [{"from_s": a, "to_s": b, "load": l} for a, b, l in bg[i]]
        hosts.append(h)
    for i in range(1, 4):
        hosts.append({"name": f"lin{i}", "cpus": 4, "power": 2, "slots": 4})
    for i in range(1, 25):
        h = {"name": f"desk{i:02d}", "cpus": 2, "power": 1, "slots": 2}
        if i % 5 == 0:
            a = R.uniform(0, 150)
            h["background"] = [{"from_s": round(a, 1), "to_s": round(a + R.uniform(30, 90), 1), "load": 1.0}]
        if i % 3 == 1:
            away, t = [], R.uniform(0, 60)
            while t < 240:
                d = R.uniform(15, 50)
                away.append({"from_s": round(t, 1), "to_s": round(t + d, 1)})
                t += d + R.uniform(40, 100)
            h["away"] = away
        hosts.append(h)
    return hosts

cu = []
for i, st in enumerate([0, 20, 45]):
    cu.append({"name": f"heavy{i+1}", "builds": [{"start_s": st, "jobs": 4000, "parallel": 64, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i in range(5):
    a = round(R.uniform(0, 60), 1)
    cu.append({"name": f"mid{i+1}", "builds": [{"start_s": a, "jobs": 300, "parallel": 16, "job_s": {"mean": 2.0, "sd": 1.0}},
                                               {"start_s": round(a + R.uniform(60, 120), 1), "jobs": 300, "parallel": 16, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i in range(12):
    bs = [{"start_s": round(R.uniform(0, 220), 1), "jobs": R.choice([20, 30, 40]), "parallel": 8, "job_s": {"mean": 2.0, "sd": 1.0}}
          for _ in range(R.choice([3, 4, 5]))]
    bs.sort(key=lambda b: b["start_s"])
    cu.append({"name": f"light{i+1:02d}", "builds": bs})
crunch = {"name": "crunch", "seed": 11, "hosts": farm_long(), "users": cu}

# workstations: a small farm (2 servers, 3 Linux boxes, 8 desktops) and
# engineers whose own machines count: the two heavy users have 8-slot
# workstations of power 1.5, the two medium users 4 slots of power 1.2,
# the six light users plain 2-slot desktops. Jobs are longer (mean 3 s).
ws_hosts = [h for h in farm() if h["name"] in ("sun1", "sun3", "lin1", "lin2", "lin3") or h["name"] in [f"desk{i:02d}" for i in range(1, 9)]]
wu = []
for i, st in enumerate([0, 10]):
    wu.append({"name": f"heavy{i+1}", "local_slots": 8, "local_power": 1.5,
               "builds": [{"start_s": st, "jobs": 1200, "parallel": 48, "job_s": {"mean": 3.0, "sd": 2.0}}]})
for i, st in enumerate([5, 30]):
    wu.append({"name": f"mid{i+1}", "local_slots": 4, "local_power": 1.2,
               "builds": [{"start_s": st, "jobs": 150, "parallel": 16, "job_s": {"mean": 3.0, "sd": 2.0}}]})
for i in range(6):
    bs = [{"start_s": round(R.uniform(0, 90), 1), "jobs": 15, "parallel": 6, "job_s": {"mean": 3.0, "sd": 2.0}} for _ in range(3)]
    bs.sort(key=lambda b: b["start_s"])
    wu.append({"name": f"light{i+1}", "builds": bs})
workstations = {"name": "workstations", "seed": 5, "hosts": ws_hosts, "users": wu}

# team40: a team twice team20's size on a farm twice its size: 6 fast
# servers (two with their owners' load), 4 Linux boxes, 40 desktops (a
# fifth with an owner working, a quarter coming and going); 5 heavy users
# (3000-file builds at -j64 arriving over a minute), 10 medium (one
# 250-file build at -j16), 25 light (2-4 builds of 20-40 files at -j8).
def farm40():
    hosts = []
    for i in range(1, 7):
        h = {"name": f"sun{i}", "cpus": 8, "power": 3, "slots": 8}
        if i in (1, 4):
            a = R.uniform(0, 60)
            h["background"] = [{"from_s": round(a, 1), "to_s": round(a + R.uniform(60, 120), 1), "load": float(R.choice([2, 3, 4]))}]
        hosts.append(h)
    for i in range(1, 5):
        hosts.append({"name": f"lin{i}", "cpus": 4, "power": 2, "slots": 4})
    for i in range(1, 41):
        h = {"name": f"desk{i:02d}", "cpus": 2, "power": 1, "slots": 2}
        if i % 5 == 0:
            a = R.uniform(0, 120)
            h["background"] = [{"from_s": round(a, 1), "to_s": round(a + R.uniform(20, 60), 1), "load": 1.0}]
        if i % 4 == 1:
            a = R.uniform(0, 120)
            h["away"] = [{"from_s": round(a, 1), "to_s": round(a + R.uniform(20, 60), 1)}]
        hosts.append(h)
    return hosts

t40 = []
for i, st in enumerate([0, 10, 25, 40, 60]):
    t40.append({"name": f"heavy{i+1}", "builds": [{"start_s": st, "jobs": 3000, "parallel": 64, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i in range(10):
    t40.append({"name": f"mid{i+1:02d}", "builds": [{"start_s": round(R.uniform(0, 120), 1), "jobs": 250, "parallel": 16, "job_s": {"mean": 2.0, "sd": 1.0}}]})
for i in range(25):
    bs = [{"start_s": round(R.uniform(0, 150), 1), "jobs": R.choice([20, 30, 40]), "parallel": 8, "job_s": {"mean": 2.0, "sd": 1.0}}
          for _ in range(R.choice([2, 3, 4]))]
    bs.sort(key=lambda b: b["start_s"])
    t40.append({"name": f"light{i+1:02d}", "builds": bs})
team40 = {"name": "team40", "seed": 40, "hosts": farm40(), "users": t40}

for n, sc in [("alone", alone), ("team20", team20), ("heavy-vs-light", hvl), ("crunch", crunch), ("workstations", workstations), ("team40", team40)]:
    with open(f"scenarios/{n}.json", "w") as f:
        json.dump(sc, f, indent=1)
        f.write("\n")
