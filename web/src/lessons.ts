// What can be done with a lesson in each status (mirrors services/content/domain.py):
// edit unless it is still generating, duplicate when ready or published (a catalogue
// lesson too), publish when ready, unpublish when published, delete always (own).
import type { Lesson } from "./api/client";

export interface LessonActions {
  edit: boolean;
  duplicate: boolean;
  publish: boolean;
  unpublish: boolean;
  remove: boolean;
}

export function lessonActions(lesson: Lesson, own: boolean): LessonActions {
  const ready = lesson.status === "ready" || lesson.status === "published";
  return {
    edit: own && lesson.status !== "generating",
    duplicate: ready,
    publish: own && lesson.status === "ready",
    unpublish: own && lesson.status === "published",
    remove: own,
  };
}

export interface LessonForm {
  topic: string;
  content_type: string;
  difficulty: number;
  body: string;
}

export function lessonForm(lesson: Lesson): LessonForm {
  return {
    topic: lesson.topic ?? "",
    content_type: lesson.content_type ?? "lesson",
    difficulty: lesson.difficulty ?? 3,
    body: lesson.body ?? "",
  };
}

/** The PATCH body: only the fields the edit changed (the gateway makes them the mask); null when none. */
export function lessonChanges(lesson: Lesson, form: LessonForm): Partial<LessonForm> | null {
  const before = lessonForm(lesson);
  const changes: Partial<LessonForm> = {};
  if (form.topic.trim() !== before.topic) changes.topic = form.topic.trim();
  if (form.content_type !== before.content_type) changes.content_type = form.content_type;
  if (form.difficulty !== before.difficulty) changes.difficulty = form.difficulty;
  if (form.body !== before.body) changes.body = form.body;
  return Object.keys(changes).length ? changes : null;
}

export const CONTENT_TYPES: [string, string][] = [
  ["lesson", "Lesson"],
  ["quiz", "Quiz"],
  ["activity", "Activity"],
];
