"""The workstation agent: what runs on a workstation for the site, holding no database credentials.

The site's scheduler puts tasks on a workstation's own queue (tasks.py); each runs code of
`workstation/` (and the environment packages on that disk), takes the plain data it needs from the
site and gives back plain data (site.py: the `Site` contract), and never opens the database. On a
workstation host the agent runs with `rebench_site.agent_settings`, which has no database at all,
and reaches the site over HTTPS with its workstation token (`HttpSite`); on the web host itself
the same tasks reach the site's services in-process (`graders.agent_site.InProcessSite`).
See docs/subsystems/workstation-agent.md.
"""
