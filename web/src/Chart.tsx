// A stacked bar chart in plain SVG: one column per day, a segment per label. The
// figure has a caption and a text summary for screen readers, every bar a tooltip,
// and the same numbers as a table behind a "Show the numbers" toggle (keyboard).
import { useId } from "react";
import { labelWords, PALETTE, type Series, shortDate, stackBars, ticks, totals } from "./charts";

const WIDTH = 480;
const HEIGHT = 180;
const LEFT = 48; // room for the axis values
const BOTTOM = 22; // room for the dates
const TOP = 10; // room for the top axis value

export function BarChart(props: {
  title: string;
  series: Series;
  format?: (value: number) => string;
  testId?: string;
}) {
  const { title, series } = props;
  const format = props.format ?? ((v: number) => new Intl.NumberFormat("en-US").format(v));
  const id = useId();
  const layout = stackBars(series, WIDTH - LEFT, HEIGHT);
  const sums = totals(series);
  const total = sums.reduce((a, b) => a + b, 0);
  const colour = (label: string) => PALETTE[Math.max(0, series.labels.indexOf(label)) % PALETTE.length];
  const every = Math.max(1, Math.ceil(series.days.length / 6)); // at most ~6 date labels
  const slot = series.days.length ? (WIDTH - LEFT) / series.days.length : 0;
  const first = series.days[0]?.date;
  const last = series.days[series.days.length - 1]?.date;
  const summary =
    `${title}: ${format(total)} in all over ${series.days.length} days` +
    (first && last ? ` (${shortDate(first)} to ${shortDate(last)})` : "") +
    (series.labels.length ? `, by ${series.labels.map(labelWords).join(", ")}.` : ".");
  return (
    <figure className="chart card" aria-labelledby={`${id}-title`} data-testid={props.testId} data-total={total}>
      <figcaption id={`${id}-title`}>
        <strong>{title}</strong> <span className="hint">{format(total)} in all</span>
      </figcaption>
      <svg viewBox={`0 ${-TOP} ${WIDTH} ${HEIGHT + BOTTOM + TOP}`} role="img" aria-label={summary} preserveAspectRatio="xMidYMid meet">
        {ticks(layout.top).map((t) => {
          const y = HEIGHT - (t / layout.top) * HEIGHT;
          return (
            <g key={t} className="tick">
              <line x1={LEFT} x2={WIDTH} y1={y} y2={y} />
              <text x={LEFT - 6} y={y + 4} textAnchor="end">
                {format(t)}
              </text>
            </g>
          );
        })}
        <g transform={`translate(${LEFT} 0)`}>
          {layout.bars.map((bar) => (
            <rect
              key={`${bar.date}-${bar.label}`}
              x={bar.x}
              y={bar.y}
              width={bar.width}
              height={bar.height}
              fill={colour(bar.label)}
              data-value={bar.value}
            >
              <title>{`${shortDate(bar.date)}: ${labelWords(bar.label)} ${format(bar.value)}`}</title>
            </rect>
          ))}
          {series.days.map((day, i) =>
            i % every === 0 || i === series.days.length - 1 ? (
              <text
                key={day.date}
                className="date"
                x={i === series.days.length - 1 ? (i + 1) * slot : i * slot + slot / 2}
                y={HEIGHT + 16}
                textAnchor={i === series.days.length - 1 ? "end" : "middle"}
              >
                {shortDate(day.date)}
              </text>
            ) : null,
          )}
        </g>
      </svg>
      {series.labels.length > 1 ? (
        <ul className="legend" aria-label={`${title}: series`}>
          {series.labels.map((label) => (
            <li key={label}>
              <span className="swatch" style={{ background: colour(label) }} aria-hidden="true" />
              {labelWords(label)}
            </li>
          ))}
        </ul>
      ) : null}
      <details>
        <summary>Show the numbers</summary>
        <div className="scroll">
          <table>
            <caption className="sr-only">{title}, per day</caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {series.labels.map((label) => (
                  <th scope="col" className="num" key={label}>
                    {labelWords(label)}
                  </th>
                ))}
                {series.labels.length > 1 ? (
                  <th scope="col" className="num">
                    Total
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {series.days.map((day, i) => (
                <tr key={day.date}>
                  <th scope="row">{shortDate(day.date)}</th>
                  {series.labels.map((label) => (
                    <td className="num" key={label}>
                      {format(day.values[label] ?? 0)}
                    </td>
                  ))}
                  {series.labels.length > 1 ? <td className="num">{format(sums[i] ?? 0)}</td> : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
