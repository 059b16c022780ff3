from django.urls import path

from trials import views

app_name = "trials"
urlpatterns = [
    path("my/", views.my_trials, name="my"),
    path("book/", views.book_choose, name="book"),
    path("book/<slug:slug>/", views.book_environment, name="book-environment"),
    path("reservations/", views.reservation_list, name="reservations"),
    path("reservations/<int:pk>/end/", views.reservation_end, name="reservation-end"),
    path("reservations/<int:pk>/cancel/", views.reservation_cancel, name="reservation-cancel"),
    path("reservations/<int:pk>/start/", views.attempt_start, name="attempt-start"),
    path("attempts/", views.attempt_list, name="attempt-list"),
    path("attempts/<int:pk>/", views.attempt_detail, name="attempt"),
    path("attempts/<int:pk>/clock/", views.attempt_clock, name="attempt-clock"),
    path("attempts/<int:pk>/live/", views.attempt_live, name="attempt-live"),
    path("attempts/<int:pk>/pause/", views.attempt_pause, name="attempt-pause"),
    path("attempts/<int:pk>/resume/", views.attempt_resume, name="attempt-resume"),
    path("attempts/<int:pk>/prepare-again/", views.attempt_preparation_retry, name="attempt-preparation-retry"),
    path("attempts/<int:pk>/submit/", views.attempt_submit, name="attempt-submit"),
    path("attempts/<int:pk>/notes/", views.attempt_note, name="attempt-note"),
    path("attempts/<int:pk>/end/", views.attempt_end, name="attempt-end"),
    path("attempts/<int:pk>/exclude/", views.attempt_exclude, name="attempt-exclude"),
    path("attempts/<int:pk>/include/", views.attempt_include, name="attempt-include"),
    path("attempts/<int:pk>/technical-pause/", views.attempt_technical_pause, name="attempt-technical-pause"),
    path("attempts/<int:pk>/recordings/", views.terminal_replay, name="terminal-replay"),
    path("attempts/<int:pk>/recordings/cast/", views.terminal_cast, name="terminal-cast"),
    path("attempts/<int:pk>/message/", views.attempt_message, name="attempt-message"),
    path("attempts/<int:pk>/ssh-key/", views.attempt_ssh_key, name="attempt-ssh-key"),
    path("ssh-keys/", views.ssh_keys, name="ssh-keys"),
    path("ssh-keys/<int:pk>/delete/", views.ssh_key_delete, name="ssh-key-delete"),
    path("schedule/", views.schedule, name="schedule"),
    path("workstations/", views.workstation_list, name="workstations"),
    path("workstations/<int:pk>/", views.workstation_detail, name="workstation"),
    path("workstations/<int:pk>/setup.sh", views.workstation_setup, name="workstation-setup"),
    path("workstations/<int:pk>/gpus/<int:index>/problem/", views.gpu_problem, name="gpu-problem"),
]
